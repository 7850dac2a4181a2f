"""Text the store accepts: the same rule on every database.

PostgreSQL cannot hold a NUL character in a text column (SQLite can), so a NUL
would be stored on one database and crash the other. The store refuses it on
both, naming the field, and the REST protocol models use the same check.
"""

from __future__ import annotations

from rolecraft.errors import RolecraftError

NUL = "\x00"


def nul_free(value: str) -> str:
    """`value` unchanged, or ValueError when it holds a NUL (as a pydantic validator: a 400 naming the field)."""
    if NUL in value:
        raise ValueError("contains a NUL character (\\u0000), which cannot be stored")
    return value


def refuse_nul(value: str, field: str) -> str:
    """`value` unchanged, or a RolecraftError (400) naming `field` when it holds a NUL."""
    try:
        return nul_free(value)
    except ValueError as exc:
        raise RolecraftError(f"'{field}' {exc}", code="invalid_text", param=field) from None


def refuse_nul_in(**fields: str | None) -> None:
    """Check several named text fields at once (None: not given)."""
    for field, value in fields.items():
        if value is not None:
            refuse_nul(value, field)
