"""Who is calling: an API key (Authorization: Bearer rc-...) or the local single user.

Keys are checked against their stored digests on every request, so a revoked
key stops working at once. Everything stored belongs to the key that created it
(`Principal.owner`, which the engine and store check); the local user owns what
is made without a key (CLI, keyless server on loopback). In keyless mode a valid key still identifies its
owner, and any other bearer token (the official client insists on sending one)
means the local user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from rolecraft.server.state import ServerState, server_state
from rolecraft.store.keys import find_key

bearer = HTTPBearer(auto_error=False, description="An API key from `rolecraft keys create NAME`.")


@dataclass(frozen=True)
class Principal:
    """The caller: `owner` is the key id (None for the local user)."""

    owner: str | None
    name: str
    rate_limit: int = 0

    @property
    def limiter_key(self) -> str:
        return self.owner or "local"


LOCAL = Principal(owner=None, name="local")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    state: Annotated[ServerState, Depends(server_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller of this request, or 401; then the caller's rate limit, or 429."""
    principal = _identify(state, credentials.credentials if credentials else None)
    wait = state.limiter.retry_after(principal.limiter_key, principal.rate_limit)
    if wait is not None:
        raise HTTPException(429, f"rate limit of {principal.rate_limit} requests a minute reached for this key; "
                                 f"retry in {math.ceil(wait)} s", headers={"Retry-After": str(math.ceil(wait))})
    return principal


def _identify(state: ServerState, token: str | None) -> Principal:
    key = find_key(state.engine.store, token) if token else None
    if key is not None:
        return Principal(owner=key.id, name=key.name,
                         rate_limit=key.rate_limit or state.server.rate_limit_per_minute)
    if not state.server.keys_required:
        return LOCAL
    if token is None:
        raise _unauthorized("missing API key: send the header 'Authorization: Bearer <key>' "
                            "(create one with `rolecraft keys create NAME`)")
    raise _unauthorized("invalid or revoked API key")


Caller = Annotated[Principal, Depends(authenticate)]
