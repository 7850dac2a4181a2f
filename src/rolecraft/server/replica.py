"""The replica's name on every response (X-Rolecraft-Replica), when several servers sit behind a load balancer.

It shows which process answered, so a client or a test can see that a session's
turns stay on the replica that holds its KV cache (see scripts/replicas.sh).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-rolecraft-replica"


class ReplicaHeader:
    """ASGI middleware: add `X-Rolecraft-Replica: <name>` to every HTTP response."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, self.name)]
            await send(message)

        await self.app(scope, receive, named)
