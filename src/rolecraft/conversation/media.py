"""Pictures and speech in a user's turn, turned into what the model can read: the one perception path.

Whatever door they come through (CLI, web upload, OpenAI `image_url` and
`input_audio` parts, REST), the raw bytes become one `UserInput` and are
perceived once here. Every picture is described (labels, faces, colours, light,
size); speech becomes its transcript plus a note on how it was said. The bytes
are kept as attachments (content-addressed blobs the store links from the
message) and the observations live in the message's meta, never in the user's
words, so the chat shows the picture and later turns, text-only models and
`prompt_content` read the description. Backends that read images natively get
the picture itself. Expressions are labelled here too, after the reply.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError
from rolecraft.perception.containers import sniff_audio

if TYPE_CHECKING:
    from rolecraft.conversation.engine import Engine


@dataclass
class UserInput:
    """What the user sends in one turn."""

    text: str = ""
    images: Sequence[bytes] = ()
    audio: bytes | None = None
    heard: Any = None  # a SpeechToText that already heard `audio` (a live call), so it is not transcribed twice


@dataclass(frozen=True)
class Blob:
    """The bytes of one attachment, stored with the turn that carries it."""

    data: bytes
    media_type: str
    kind: str  # "image" or "audio"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def ref(self) -> dict[str, str]:
        """How a message's meta links the attachment."""
        return {"sha256": self.sha256, "kind": self.kind, "media_type": self.media_type}


@dataclass
class Perceived:
    """A user message after perception: the words, the meta (observations, attachment links), the blobs."""

    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    native_images: tuple[str, ...] = ()
    blobs: tuple[Blob, ...] = ()


def perceive(engine: Engine, character: Character | None, user: str, given: UserInput) -> Perceived:
    """Transcribe speech and describe pictures; refuse what cannot be read with a clear error.
    `character` is who sees the pictures (None: the bare model)."""
    from rolecraft.perception import AudioOptions, ImageOptions, observe_audio, observe_image, render_observation

    settings, text, meta, blobs = engine.settings, given.text.strip(), {}, []
    if given.audio is not None:
        heard = observe_audio(given.audio, stt=given.heard, options=AudioOptions(
            max_seconds=settings.audio_max_seconds, stt_backend=settings.stt_backend, stt_model=settings.stt_model))
        meta["audio"] = {"observation": heard.model_dump(mode="json"), "note": f"[{heard.to_text()}]"}
        blobs.append(Blob(given.audio, f"audio/{sniff_audio(given.audio) or 'wav'}", "audio"))
        text = text or heard.transcript.strip()
    notes, native = [], []
    for data in given.images:
        seen = observe_image(data, options=ImageOptions(max_pixels=settings.image_max_pixels), cache=engine.images)
        notes.append(render_observation(seen, settings.image_template, char=character.name if character else "you",
                                        user=user))
        meta.setdefault("images", []).append(seen.model_dump(mode="json"))
        blobs.append(Blob(data, f"image/{_subtype(seen.format)}", "image"))
        if engine.backend.capabilities.images:
            native.append(f"data:image/{_subtype(seen.format)};base64,{base64.b64encode(data).decode()}")
    if notes:
        meta["image_notes"] = notes
    if blobs:
        meta["attachments"] = [b.ref() for b in blobs]
    if not text and not notes and "audio" not in meta:
        raise RolecraftError("empty message", code="empty_message", param="content")
    return Perceived(text or "…", meta, tuple(native), tuple(blobs))


def reminder(template: str, meta: dict[str, Any], *, char: str, user: str) -> str | None:
    """The `image_reminder` text for the pictures of a message (None when off or without pictures)."""
    if not template or not meta.get("images"):
        return None
    from rolecraft.perception import ImageObservation, render_observation

    seen = [ImageObservation.model_validate(image) for image in meta["images"]]
    return "\n".join(render_observation(s, template, char=char, user=user) for s in seen)


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
