"""One name → thing registry for every pluggable room: backends, speech engines, probes, eval abilities.

Built-ins and plugins register the same way: a built-in module registers with
the decorator when it is imported (named in `builtins`, so nothing heavy is
imported until that name is asked for), a plugin through the Python entry-point
group `group`. Asking for an unknown name is one clear error listing what exists.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from rolecraft.errors import RolecraftError

T = TypeVar("T")


class Registry(Generic[T]):
    """Registered things of one `kind` (for error messages), loaded lazily."""

    def __init__(self, kind: str, *, group: str | None = None, builtins: Mapping[str, str] | None = None,
                 param: str | None = None, code: str | None = None) -> None:
        self.kind, self.group, self.param = kind, group, param
        self.code = code or f"unknown_{kind.replace(' ', '_')}"
        self.builtins = dict(builtins or {})
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make `name` give the decorated class or function."""

        def wrap(item: T) -> T:
            self._items[name] = item
            return item

        return wrap

    def add(self, name: str, item: T) -> T:
        self._items[name] = item
        return item

    def _plugins(self) -> list[str]:
        return [ep.name for ep in entry_points(group=self.group)] if self.group else []

    def names(self) -> list[str]:
        """Registered names in registration order, then built-ins not yet imported, then plugins."""
        seen = dict.fromkeys([*self._items, *self.builtins, *self._plugins()])
        return list(seen)

    def get(self, name: str) -> T | None:
        """The thing registered as `name`, importing its built-in module or plugin first; None if unknown."""
        if name not in self._items and name in self.builtins:
            importlib.import_module(self.builtins[name])
        if name not in self._items and self.group:
            for ep in entry_points(group=self.group, name=name):
                self._items.setdefault(name, ep.load())
        return self._items.get(name)

    def require(self, name: str) -> T:
        """Like `get`, but an unknown name is a RolecraftError naming the choices."""
        found = self.get(name)
        if found is None:
            raise RolecraftError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}",
                                 code=self.code, param=self.param or self.kind)
        return found
