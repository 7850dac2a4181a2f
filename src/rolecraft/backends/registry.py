"""Backend registry: name → factory(settings). Built-ins and plugins register the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rolecraft.registry import Registry

if TYPE_CHECKING:
    from rolecraft.backends.base import Backend
    from rolecraft.settings import Settings

Factory = Callable[["Settings"], "Backend"]
BACKENDS: Registry[Factory] = Registry("backend", group="rolecraft.backends", param="backend", builtins={
    "llama_cpp": "rolecraft.backends.llama_cpp",
    "openai_compat": "rolecraft.backends.openai_compat",
    "transformers": "rolecraft.backends.transformers_hf",
})
register = BACKENDS.register


def available_backends() -> list[str]:
    """Names of every backend that can be asked for."""
    return sorted(BACKENDS.names())


def create_backend(settings: Settings) -> Backend:
    """Build the backend named by `settings.backend`."""
    return BACKENDS.require(settings.backend)(settings)
