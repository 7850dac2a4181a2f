"""Backend registry: name → factory. Built-ins and plugins register the same way."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from rolecraft.errors import RolecraftError

if TYPE_CHECKING:
    from rolecraft.backends.base import Backend
    from rolecraft.settings import Settings

Factory = Callable[["Settings"], "Backend"]
_REGISTRY: dict[str, Factory] = {}
_BUILTIN_MODULES = {
    "llama_cpp": "rolecraft.backends.llama_cpp",
    "openai_compat": "rolecraft.backends.openai_compat",
    "transformers": "rolecraft.backends.transformers_hf",
}


def register(name: str) -> Callable[[Factory], Factory]:
    """Class or function decorator: make `name` a backend built by `factory(settings)`."""

    def wrap(factory: Factory) -> Factory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def available_backends() -> list[str]:
    """Names of every backend that can be asked for."""
    plugins = {ep.name for ep in entry_points(group="rolecraft.backends")}
    return sorted(set(_BUILTIN_MODULES) | set(_REGISTRY) | plugins)


def _load(name: str) -> Factory | None:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[name])
    else:
        for ep in entry_points(group="rolecraft.backends", name=name):
            factory = ep.load()
            if name not in _REGISTRY:
                _REGISTRY[name] = factory
    return _REGISTRY.get(name)


def create_backend(settings: Settings) -> Backend:
    """Build the backend named by `settings.backend`."""
    factory = _load(settings.backend)
    if factory is None:
        raise RolecraftError(
            f"unknown backend {settings.backend!r}; available: {', '.join(available_backends())}",
            code="unknown_backend",
            param="backend",
        )
    return factory(settings)
