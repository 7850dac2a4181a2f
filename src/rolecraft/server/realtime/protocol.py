"""The realtime voice protocol: our subset of the OpenAI Realtime API's events, as JSON text frames.

Client → server:
- `session.update` `{"session": {"input_sample_rate": 8000..48000, "output_sample_rate": ...,
  "input_audio_format": "pcm16", "input_audio_transcription": {"language": "zh"},
  "rolecraft": {"partial_transcripts_s": 1.0}}}`; other rates are resampled, other formats refused.
- `input_audio_buffer.append` `{"audio": base64 PCM16 mono}`; `input_audio_buffer.commit` (end the
  utterance now); `response.cancel` (stop the reply; what was heard is stored, marked interrupted).

Server → client: `session.created`, `session.updated`, `input_audio_buffer.speech_started` /
`speech_stopped` / `committed`, `conversation.item.input_audio_transcription.delta` (partial) /
`.completed`, `response.created`, `response.audio_transcript.delta`, `rolecraft.expression` (the label of
each sentence, sent just before its audio), `response.audio.delta` (base64 PCM16 at the output rate),
`response.audio.done`, `response.audio_transcript.done`, `response.done` (status completed, cancelled
or failed; `rolecraft` holds stored message ids and timings), and `error`.

Close codes: 4001 input faster than real time, 4002 the client does not read, 1008 bad authentication,
1011 an internal error. A bad event is answered with an `error` event and the call goes on.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from rolecraft.errors import RolecraftError

RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_FRAME_BYTES = 1 << 20
MAX_EVENT_CHARS = 2 * MAX_FRAME_BYTES


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: str | None = None


class Transcription(BaseModel):
    model_config = ConfigDict(extra="ignore")
    language: str | None = Field(None, max_length=16)


class Extras(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partial_transcripts_s: float | None = Field(None, ge=0, le=30)


class SessionFields(BaseModel):
    model_config = ConfigDict(extra="ignore")
    input_audio_format: str = "pcm16"
    output_audio_format: str = "pcm16"
    input_sample_rate: int | None = None
    output_sample_rate: int | None = None
    input_audio_transcription: Transcription | None = None
    rolecraft: Extras | None = None


class SessionUpdate(_Event):
    type: Literal["session.update"]
    session: SessionFields


class Append(_Event):
    type: Literal["input_audio_buffer.append"]
    audio: str = Field(max_length=MAX_EVENT_CHARS)


class Commit(_Event):
    type: Literal["input_audio_buffer.commit"]


class Cancel(_Event):
    type: Literal["response.cancel"]


ClientEvent = Annotated[SessionUpdate | Append | Commit | Cancel, Field(discriminator="type")]
_PARSER: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)


def parse_event(text: str) -> SessionUpdate | Append | Commit | Cancel:
    """One client event, or a RolecraftError naming what is wrong with it."""
    if len(text) > MAX_EVENT_CHARS:
        raise RolecraftError(f"event of {len(text)} characters is larger than the limit of {MAX_EVENT_CHARS}",
                             code="event_too_large")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise RolecraftError(f"the event is not JSON: {exc}", code="invalid_event") from None
    kind = document.get("type") if isinstance(document, dict) else None
    try:
        return _PARSER.validate_python(document)
    except ValidationError as exc:
        known = "session.update, input_audio_buffer.append, input_audio_buffer.commit, response.cancel"
        if kind not in known.split(", "):
            raise RolecraftError(f"unknown event type {kind!r}; this server knows {known}",
                                 code="unknown_event", param="type") from None
        raise RolecraftError(f"invalid {kind} event: {exc.errors()[0]['msg']} at "
                             f"{'.'.join(map(str, exc.errors()[0]['loc']))}", code="invalid_event") from None


def check_session(fields: SessionFields) -> None:
    """Refuse formats and rates we cannot take, naming them."""
    for name in ("input_audio_format", "output_audio_format"):
        if getattr(fields, name) != "pcm16":
            raise RolecraftError(f"{name} {getattr(fields, name)!r} is not supported: send pcm16 (16-bit "
                                 "little-endian mono PCM)", code="unsupported_audio_format", param=name)
    for name in ("input_sample_rate", "output_sample_rate"):
        rate = getattr(fields, name)
        if rate is not None and rate not in RATES:
            raise RolecraftError(f"{name} {rate} Hz is not supported; use one of {', '.join(map(str, RATES))}",
                                 code="unsupported_sample_rate", param=name)


def audio_bytes(event: Append) -> bytes:
    try:
        data = base64.b64decode(event.audio, validate=True)
    except (binascii.Error, ValueError):
        raise RolecraftError("input_audio_buffer.append: audio is not base64", code="invalid_audio",
                             param="audio") from None
    if len(data) > MAX_FRAME_BYTES:
        raise RolecraftError(f"audio frame of {len(data)} bytes is larger than {MAX_FRAME_BYTES}",
                             code="invalid_audio", param="audio")
    return data
