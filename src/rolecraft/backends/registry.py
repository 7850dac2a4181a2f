"""Backend registry: name → factory(settings). Built-ins and plugins register the same way.

A command that will need the model soon (`rolecraft chat`) can `preload` it: the backend is built
on a thread while the command imports its modules and opens the database, and `create_backend`
with the same settings takes it from there. While llama-cpp-python loads a model it points the
process's stdout and stderr at /dev/null, so such a command prints nothing until it has taken
the backend (or `settle` returned).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from concurrent.futures import Future
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
    """Build the backend named by `settings.backend` (or take the one `preload` is building for them)."""
    early = _preloaded.pop(_key(settings), None)
    if early is not None:
        return early.result()  # the load's own error, if it failed
    return BACKENDS.require(settings.backend)(settings)


_preloaded: dict[str, Future[Backend]] = {}


def _key(settings: Settings) -> str:
    return settings.model_dump_json()


def preload(settings: Settings) -> None:
    """Start building the backend for `settings` on a thread (once); `create_backend` waits for it."""
    key = _key(settings)
    if key in _preloaded:
        return
    future: Future[Backend] = Future()

    def load() -> None:
        try:
            future.set_result(BACKENDS.require(settings.backend)(settings))
        except BaseException as exc:  # handed to whoever takes the backend
            future.set_exception(exc)

    thread = threading.Thread(target=load, name="rolecraft-preload", daemon=True)
    _preloaded[key] = future
    thread.start()
    atexit.register(thread.join)  # never exit while llama.cpp is still loading on that thread


def settle() -> None:
    """Wait until no preload is running (its errors are raised by `create_backend`, not here)."""
    for future in list(_preloaded.values()):
        future.exception()
