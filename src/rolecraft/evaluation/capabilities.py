"""Optional abilities some probes need, registered by the modules that provide them.

The evaluation harness does not know how perception or expression work; it
asks this registry. A provider is a factory called with the Engine under test
that returns the ability, or raises RolecraftError saying why it cannot.
Known names and the ability each factory must return:

- "image_turn": `send(session, text, image_path) -> Turn` — a user turn that shows
  the character a picture (perception for text-only models, native images for VLMs).
- "expression": `classify(text) -> label` — one of SillyTavern's 28 expression labels.

Built-in modules register with `@register_capability(name)`; plugins through the
entry-point group "rolecraft.eval_capabilities" (name → factory). A probe whose
ability is missing is reported as skipped with the reason, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from rolecraft.errors import RolecraftError

Factory = Callable[[Any], Any]
_REGISTRY: dict[str, Factory] = {}
KNOWN = {
    "image_turn": "showing the character an image (needs a perception module or a vision backend)",
    "expression": "classifying a reply into an expression label (needs an expression module)",
}


def register_capability(name: str) -> Callable[[Factory], Factory]:
    """Decorator: `factory(engine)` provides the ability `name`."""

    def wrap(factory: Factory) -> Factory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def _factory(name: str) -> Factory | None:
    if name not in _REGISTRY:
        for ep in entry_points(group="rolecraft.eval_capabilities", name=name):
            _REGISTRY[name] = ep.load()
    return _REGISTRY.get(name)


def resolve(name: str, engine: Any) -> tuple[Any | None, str | None]:
    """(the ability, None) or (None, why it is unavailable)."""
    factory = _factory(name)
    if factory is None:
        what = KNOWN.get(name, name)
        return None, f"no provider for {what} is installed in this build"
    try:
        return factory(engine), None
    except RolecraftError as exc:
        return None, exc.message
