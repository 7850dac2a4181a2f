"""What the server lets in: a cap on request bodies and a per-key request rate.

The body cap is pure ASGI so it applies to every route (JSON, multipart uploads,
unknown URLs) before anything buffers the body: a declared Content-Length over
the cap is refused at once, and a chunked body is counted as it arrives.

The request rate is counted in this process, or (`rate_limit_shared`) in the
database, so that replicas sharing one database enforce one limit per key.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from typing import Protocol

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.engine import Connection, Engine
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rolecraft.errors import RolecraftError
from rolecraft.server.errors import error_response
from rolecraft.store.tables import RateHitRow

WINDOW_S = 60.0


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body passes the cap; FastAPI passes HTTPExceptions through to the handlers."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the server's limit of {limit} bytes")


class BodyLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with an OpenAI-shaped 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            error = RolecraftError(BodyTooLarge(self.max_bytes).detail, code="request_too_large", status=413)
            await error_response(error, headers={"connection": "close"})(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


class Limiter(Protocol):
    def retry_after(self, who: str, per_minute: int) -> float | None:
        """Record a request; None if it may go ahead, else seconds until it would be allowed."""


class RateLimiter:
    """Sliding one-minute window of request times per key, in this process."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, who: str, per_minute: int) -> float | None:
        """Record a request; None if it may go ahead, else seconds until it would be allowed."""
        if per_minute <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(who, deque())
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= per_minute:
                return max(0.0, hits[0] + 60 - now)
            hits.append(now)
            return None


class DatabaseRateLimiter:
    """Sliding one-minute window per key, in the `rate_hits` table of the shared database.

    Each check is one transaction that first serialises with every other check of the same key
    (a PostgreSQL advisory lock on the key; on SQLite the DELETE takes the database's write lock),
    then drops the key's hits older than a minute, counts the rest and records this one if allowed.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def retry_after(self, who: str, per_minute: int) -> float | None:
        if per_minute <= 0:
            return None
        table = RateHitRow.__table__
        with self.engine.begin() as conn:
            self._lock(conn, who)
            now = time.time()
            conn.execute(delete(table).where(table.c.who == who, table.c.at <= now - WINDOW_S))
            count, oldest = conn.execute(select(func.count(), func.min(table.c.at)).where(table.c.who == who)).one()
            if count >= per_minute:  # a hit another replica made while we waited may be newer than `now`
                return min(WINDOW_S, max(0.0, oldest + WINDOW_S - time.time()))
            conn.execute(insert(table).values(who=who, at=now))
        return None

    @staticmethod
    def _lock(conn: Connection, who: str) -> None:
        if conn.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"rate:{who}".encode()).digest()[:8], "big", signed=True)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def limiter_for(shared: bool, engine: Engine) -> Limiter:
    """The rate limiter a server process uses: in the database `engine` when `shared`, else in memory."""
    return DatabaseRateLimiter(engine) if shared else RateLimiter()


def check_reply_tokens(overrides: dict, limit: int, param: str = "max_tokens") -> None:
    """Refuse a request for more reply tokens than this server allows, as OpenAI does."""
    asked = overrides.get("max_tokens")
    if asked is not None and asked > limit:
        raise RolecraftError(f"{param} is too large: {asked}; this server allows at most {limit} tokens a reply",
                             code="invalid_value", param=param)
