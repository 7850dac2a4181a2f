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
from typing import Any

from rolecraft.errors import RolecraftError
from rolecraft.registry import Registry

Factory = Callable[[Any], Any]
CAPABILITIES: Registry[Factory] = Registry("capability", group="rolecraft.eval_capabilities")
register_capability = CAPABILITIES.register
KNOWN = {
    "image_turn": "showing the character an image (needs a perception module or a vision backend)",
    "expression": "classifying a reply into an expression label (needs an expression module)",
}


def resolve(name: str, engine: Any) -> tuple[Any | None, str | None]:
    """(the ability, None) or (None, why it is unavailable)."""
    factory = CAPABILITIES.get(name)
    if factory is None:
        what = KNOWN.get(name, name)
        return None, f"no provider for {what} is installed in this build"
    try:
        return factory(engine), None
    except RolecraftError as exc:
        return None, exc.message


def _need(module: str, package: str, extra: str) -> None:
    import importlib.util

    from rolecraft.errors import missing_extra

    if importlib.util.find_spec(module) is None:
        raise missing_extra(package, extra)


@register_capability("image_turn")
def _image_turn(engine: Any) -> Callable[[Any, str, str], Any]:
    """Pictures through the engine's own turn pipeline (observations, or native images for VLMs)."""
    from pathlib import Path

    if not engine.backend.capabilities.images:
        _need("torch", "torch", "vision")
        _need("efficientnet_lite_pytorch", "efficientnet-lite-pytorch", "vision")
    return lambda session, text, image_path: session.send(text, images=[Path(image_path).read_bytes()])


@register_capability("expression")
def _expression(engine: Any) -> Callable[[str], str]:
    """The expression method configured for the engine (lexicon by default)."""
    _need("vaderSentiment", "vaderSentiment", "expressions")
    from rolecraft.conversation.media import expression_of

    return lambda text: expression_of(engine, text) or "neutral"
