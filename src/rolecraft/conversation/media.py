"""Pictures and speech in a user's turn, turned into what the model can read.

Every picture is described (labels, faces, colours, light, size) and the
description is stored with the turn, so later turns and text-only models can
talk about it; backends that read images natively also get the picture itself
in the turn it was sent. Speech becomes its transcript plus a note on how it
was said. Expressions are labelled here too, after the reply.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError

if TYPE_CHECKING:
    from rolecraft.conversation.engine import Engine


@dataclass
class UserInput:
    """What the user sends in one turn."""

    text: str = ""
    images: Sequence[bytes] = ()
    audio: bytes | None = None


@dataclass
class Perceived:
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    native_images: tuple[str, ...] = ()


def perceive(engine: Engine, character: Character, user: str, given: UserInput) -> Perceived:
    """Transcribe speech and describe pictures; refuse what cannot be read with a clear error."""
    from rolecraft.perception import AudioOptions, ImageOptions, observe_audio, observe_image, render_observation

    settings, text, meta = engine.settings, given.text.strip(), {}
    if given.audio is not None:
        heard = observe_audio(given.audio, options=AudioOptions(
            max_seconds=settings.audio_max_seconds, stt_backend=settings.stt_backend, stt_model=settings.stt_model))
        meta["audio"] = {"observation": heard.model_dump(mode="json"), "note": f"[{heard.to_text()}]"}
        text = text or heard.transcript.strip()
    notes, native = [], []
    for data in given.images:
        seen = observe_image(data, options=ImageOptions(max_pixels=settings.image_max_pixels), cache=engine.images)
        notes.append(render_observation(seen, settings.image_template, char=character.name, user=user))
        meta.setdefault("images", []).append(seen.model_dump(mode="json"))
        if engine.backend.capabilities.images:
            native.append(f"data:image/{_subtype(seen.format)};base64,{base64.b64encode(data).decode()}")
    if notes:
        meta["image_notes"] = notes
    if not text and not notes and "audio" not in meta:
        raise RolecraftError("empty message", code="empty_message", param="content")
    return Perceived(text or "…", meta, tuple(native))


def _subtype(fmt: str) -> str:
    return {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}.get(fmt.upper(), "png")


def prompt_content(content: str, meta: dict[str, Any], show_images: bool, user: str) -> str:
    """A stored user message as the model reads it: picture descriptions, speech note, then the words."""
    parts = []
    notes = meta.get("image_notes") or []
    if notes:
        parts.extend(notes if show_images else [f"[{user} showed a picture earlier]"])
    if "audio" in meta:
        parts.append(meta["audio"]["note"])
    return "\n".join([*parts, content]) if parts else content


def expression_of(engine: Engine, text: str) -> str | None:
    """The expression label for a reply, or None when labelling is off or its extra is missing."""
    method = engine.settings.expressions
    if method == "off":
        return None
    try:
        if method == "llm":
            from rolecraft.expressions import classify_llm

            return classify_llm(text, engine.backend).label
        from rolecraft.expressions import classify

        return classify(text).label
    except RolecraftError as exc:
        if exc.code == "missing_dependency":
            return None
        raise
