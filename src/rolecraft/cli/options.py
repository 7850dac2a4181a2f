"""Turn the fields of a pydantic model (Settings, TrainConfig) into click options, so flags, env vars,
validation and help share one source."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from pydantic import BaseModel, ValidationError

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


def model_options(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add one option per field of `model`: booleans as --x/--no-x, lists as repeatable options."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for name, field in reversed(model.model_fields.items()):
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            shown = " [required]" if field.is_required() else "" if default is None else f" [default: {default}]"
            help_text = f"{field.description or ''}{shown}"
            if field.annotation is bool:
                option = click.option(f"{_flag(name)}/--no-{name.replace('_', '-')}", name, default=None,
                                      help=help_text)
            elif isinstance(default, list):
                option = click.option(_flag(name), name, multiple=True, metavar="VALUE", help=help_text)
            else:
                option = click.option(_flag(name), name, default=None, metavar="VALUE", help=help_text)
            func = option(func)
        return func

    return decorate


def build_model(model: type[BaseModel], given: dict[str, Any], what: str) -> Any:
    """`model` from the options that were given (unset ones fall back to the model's own defaults)."""
    values = {k: v for k, v in given.items() if k in model.model_fields and v not in (None, ())}
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{_flag(str(e['loc'][0])) if e['loc'] else what}: {e['msg']}" for e in exc.errors())
        raise RolecraftError(f"invalid {what}: {problems}", code="invalid_settings") from exc


def build_settings(given: dict[str, Any]) -> Settings:
    """Settings from the flags that were given, then env vars, config file and defaults."""
    return build_model(Settings, given, "settings")
