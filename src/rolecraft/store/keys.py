"""API keys for the server, kept in the same database as the sessions they own.

A key is shown to its owner once, when created; the database keeps only its
SHA-256 digest (keys are 256-bit random tokens, so a fast hash is enough: there
is nothing to brute-force). Revoking keeps the row, so a revoked key's sessions
stay owned by it and invisible to everyone else.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from rolecraft.errors import RolecraftError, not_found
from rolecraft.store.db import Store
from rolecraft.store.tables import ApiKeyRow

KEY_PREFIX = "rc-"


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    name: str
    rate_limit: int | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.name, row.rate_limit, row.created_at, row.revoked_at)


def create_key(store: Store, name: str, *, rate_limit: int | None = None) -> tuple[ApiKey, str]:
    """A new key and its secret (the only time the secret exists outside the caller's hands)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise RolecraftError("a key name needs 1 to 100 characters", code="invalid_key_name", param="name")
    if rate_limit is not None and rate_limit < 1:
        raise RolecraftError("a key's rate limit must be at least 1 request a minute", param="rate_limit")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(id=uuid.uuid4().hex[:12], name=name, digest=_digest(secret), rate_limit=rate_limit,
                    created_at=datetime.now(UTC).replace(tzinfo=None))
    with store._tx() as db:
        db.add(row)
    return _key(row), secret


def list_keys(store: Store) -> list[ApiKey]:
    """Every key, oldest first (revoked ones included)."""
    with store._tx() as db:
        return [_key(row) for row in db.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id))]


def revoke_key(store: Store, key_id: str) -> ApiKey:
    """Revoke a key by id; it stops working at once. Revoking twice is harmless."""
    with store._tx() as db:
        row = db.get(ApiKeyRow, key_id)
        if row is None:
            raise not_found("api_key", key_id)
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC).replace(tzinfo=None)
        return _key(row)


def find_key(store: Store, secret: str) -> ApiKey | None:
    """The active key whose secret this is, or None."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    with store._tx() as db:
        row = db.scalars(select(ApiKeyRow).where(ApiKeyRow.digest == _digest(secret))).first()
        return None if row is None or row.revoked_at is not None else _key(row)
