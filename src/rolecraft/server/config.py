"""Server knobs (`rolecraft serve`), read like every other setting from ROLECRAFT_* env vars.

These belong in `rolecraft.settings.Settings`; they live here until they move
there, and `server_settings` is the one place that reads them, so the move
touches only this module.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rolecraft.errors import RolecraftError


class ServerSettings(BaseSettings):
    """Where and how the HTTP server listens, and what it lets through."""

    model_config = SettingsConfigDict(env_prefix="ROLECRAFT_", extra="ignore", validate_default=True)

    host: str = Field("127.0.0.1", description="Address `rolecraft serve` listens on.")
    port: int = Field(8765, ge=1, le=65535, description="Port `rolecraft serve` listens on.")
    workers: int = Field(1, ge=1, le=64, description="Server processes (each loads its own model).")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (comma separated; * = any)."
    )
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest request body accepted, in bytes.")
    rate_limit_per_minute: int = Field(
        120, ge=0, description="Requests a minute per API key (0 = no limit; a key may carry its own)."
    )
    max_reply_tokens: int = Field(
        4096, ge=1, le=1_048_576, description="Most tokens one request may ask for (max_tokens above it is a 400)."
    )
    require_api_key: bool | None = Field(
        None, description="Demand an API key on every request (default: only when not on a loopback address)."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        return value

    @property
    def keys_required(self) -> bool:
        """Whether requests need a key: always off loopback; on loopback only when asked for."""
        return not is_loopback(self.host) if self.require_api_key is None else self.require_api_key

    def check(self) -> None:
        """Refuse a keyless server that other machines can reach."""
        if self.require_api_key is False and not is_loopback(self.host):
            raise RolecraftError(
                f"refusing to serve without API keys on {self.host}: keyless (local single-user) mode is for "
                "loopback addresses only; create a key with `rolecraft keys create NAME`",
                code="insecure_config", param="require_api_key",
            )


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_settings(**overrides: object) -> ServerSettings:
    """The server settings in force: explicit values beat ROLECRAFT_* env vars beat defaults."""
    try:
        return ServerSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise RolecraftError(f"invalid server settings: {exc}", code="invalid_settings") from exc
