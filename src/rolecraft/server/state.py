"""What one server process holds: its runtime (engine + model thread), its settings and its rate limiter.

Created by the app's lifespan and kept on `app.state`, never in module globals,
so several apps (tests, workers) never share anything by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from rolecraft.server.config import ServerSettings
from rolecraft.server.limits import Limiter, RateLimiter

if TYPE_CHECKING:
    from rolecraft.conversation import Engine
    from rolecraft.server.runtime import Runtime


@dataclass
class ServerState:
    runtime: Runtime
    server: ServerSettings
    limiter: Limiter = field(default_factory=RateLimiter)

    @property
    def engine(self) -> Engine:
        return self.runtime.engine


def server_state(request: Request) -> ServerState:
    """The state of the app serving this request."""
    return request.app.state.rolecraft


State = Annotated[ServerState, Depends(server_state)]
