"""The server's part of the settings (`rolecraft serve`), and the one safety rule about them.

The fields live in `rolecraft.settings.Settings` like every other knob;
`ServerSettings` is the validated view the app is built from.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict

from rolecraft.errors import RolecraftError
from rolecraft.server.text_input import TextLimits
from rolecraft.settings import Settings


class ServerSettings(BaseModel):
    """Where and how the HTTP server listens, and what it lets through (a view of `Settings`)."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int
    workers: int
    cors_origins: list[str]
    max_body_bytes: int
    rate_limit_per_minute: int
    max_reply_tokens: int
    require_api_key: bool | None
    max_message_chars: int
    max_request_chars: int

    def text_limits(self) -> TextLimits:
        """Fresh caps for one request's text."""
        return TextLimits(self.max_message_chars, self.max_request_chars)

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


def server_settings(settings: Settings, **overrides: object) -> ServerSettings:
    """The server part of `settings`, with `rolecraft serve`'s own flags (when given) on top."""
    values = {name: getattr(settings, name) for name in ServerSettings.model_fields}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServerSettings(**Settings(**{**settings.model_dump(), **values}).model_dump(include=set(values)))
    except ValueError as exc:
        raise RolecraftError(f"invalid server settings: {exc}", code="invalid_settings") from exc
