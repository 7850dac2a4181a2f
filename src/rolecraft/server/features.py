"""Engine features the API already speaks for, found on the Engine when their room provides them.

The HTTP surface (OpenAI's audio endpoints, image and audio message parts,
session state and summaries, personas, lorebooks, expression sprites) is fixed
by the API we mirror; the engine grows into it. Each entry names the Engine
attribute that provides a feature and the call the server makes:

    speak(text: str, *, voice: str | None, fmt: str, speed: float) -> bytes         POST /v1/audio/speech
    transcribe(data: bytes, fmt: str, *, language: str | None, prompt: str | None) -> str
                                                                              POST /v1/audio/transcriptions
    perceive_image(url: str) -> str         an image_url (data: or http(s)) → an observation the character
                                            reads with the user's text
    perceive_audio(data: bytes, fmt: str) -> str      a transcript (+ how it sounded), read the same way
    session_state(session_id: str) -> dict                                    GET /v1/sessions/{id}/state
    session_summary(session_id: str) -> str                                   GET /v1/sessions/{id}/summary
    personas / lorebooks: stores with list() / get(id) / put(id, value) / delete(id)
    expression_sprite(char_id: str, label: str) -> tuple[bytes, str]  (image, mime)

Arguments are plain values (the server's request types never reach the engine);
`fmt` is the container recognised in the bytes (wav, mp3, flac, ogg, webm, mp4).
Until the Engine has the attribute, the request is still validated in full and
then answered with a clear error naming what is missing — never a fake result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError


@dataclass(frozen=True)
class Feature:
    attribute: str
    what: str


FEATURES = {
    "speech": Feature("speak", "text-to-speech"),
    "transcription": Feature("transcribe", "speech-to-text"),
    "image_input": Feature("perceive_image", "image input (image understanding)"),
    "audio_input": Feature("perceive_audio", "audio input (speech understanding)"),
    "state": Feature("session_state", "session state tracking"),
    "summary": Feature("session_summary", "session summaries"),
    "personas": Feature("personas", "stored personas"),
    "lorebooks": Feature("lorebooks", "stand-alone lorebooks"),
    "expressions": Feature("expression_sprite", "expression sprites"),
}


def provider(engine: Engine, name: str) -> Any | None:
    """The Engine's implementation of a feature, or None while it has none."""
    return getattr(engine, FEATURES[name].attribute, None)


def require(engine: Engine, name: str) -> Any:
    """The Engine's implementation of an endpoint's feature, or a 501 saying which one is missing."""
    found = provider(engine, name)
    if found is None:
        raise RolecraftError(f"{FEATURES[name].what} is not available in this rolecraft build yet",
                             code="unsupported_feature", status=501, type="server_error")
    return found


def require_content(engine: Engine, name: str, *, param: str) -> Any:
    """Like `require`, for a message part the model cannot take yet: a 400 naming the part."""
    found = provider(engine, name)
    if found is None:
        raise RolecraftError(f"{FEATURES[name].what} is not supported by this rolecraft build yet; "
                             "send text parts only", code="unsupported_content", param=param)
    return found
