"""Turn the fields of `Settings` into click options, so flags, env vars and help share one source."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from pydantic import ValidationError

from rolecraft.errors import RolecraftError
from rolecraft.settings import Settings


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per Settings field (all optional: unset means env/config/default)."""
    for name, field in reversed(Settings.model_fields.items()):
        env = f"ROLECRAFT_{name.upper()}"
        default = field.get_default(call_default_factory=False)
        shown = "" if default is None or callable(default) else f" [default: {default}]"
        help_text = f"{field.description or ''}{shown} (env {env})"
        func = click.option(_flag(name), name, default=None, metavar="VALUE", help=help_text)(func)
    return func


def build_settings(given: dict[str, Any]) -> Settings:
    """Settings from the flags that were given, then env vars, config file and defaults."""
    values = {k: v for k, v in given.items() if k in Settings.model_fields and v is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{_flag(str(e['loc'][0])) if e['loc'] else 'settings'}: {e['msg']}"
                             for e in exc.errors())
        raise RolecraftError(f"invalid settings: {problems}", code="invalid_settings") from exc
