"""What the server lets in: a cap on request bodies and a per-key request rate.

The body cap is pure ASGI so it applies to every route (JSON, multipart uploads,
unknown URLs) before anything buffers the body: a declared Content-Length over
the cap is refused at once, and a chunked body is counted as it arrives.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rolecraft.errors import RolecraftError
from rolecraft.server.errors import error_response


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


def check_reply_tokens(overrides: dict, limit: int, param: str = "max_tokens") -> None:
    """Refuse a request for more reply tokens than this server allows, as OpenAI does."""
    asked = overrides.get("max_tokens")
    if asked is not None and asked > limit:
        raise RolecraftError(f"{param} is too large: {asked}; this server allows at most {limit} tokens a reply",
                             code="invalid_value", param=param)
