"""Audio requests, field for field as OpenAI defines them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
SPEECH_MEDIA = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                "wav": "audio/wav", "pcm": "audio/pcm"}
TranscriptFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


class SpeechRequest(BaseModel):
    """POST /v1/audio/speech. `model` may be a character id (its voice is used when `voice` names none)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=256)
    input: str = Field(min_length=1, max_length=4096)
    voice: str = Field(min_length=1, max_length=128)
    instructions: str | None = Field(None, max_length=4096)
    response_format: SpeechFormat = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["sse", "audio"] | None = None


class Transcription(BaseModel):
    text: str
