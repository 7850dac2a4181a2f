"""Routes: POST /v1/audio/speech, POST /v1/audio/transcriptions, GET a stored reply's audio.

Requests are validated in full (audio uploads by content, not by name); the
work is done by the engine's voice and hearing services.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.server.audio.protocol import SPEECH_MEDIA, SpeechRequest, TranscriptFormat, Transcription
from rolecraft.server.auth import Caller, Principal
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.media import check_audio
from rolecraft.server.sessions.protocol import MAX_ID, SESSION_ID
from rolecraft.server.sessions.serving import owned_message
from rolecraft.server.state import State

router = APIRouter(prefix="/v1", tags=["audio"], responses=ERROR_RESPONSES)
MAX_AUDIO_BYTES = 25 * 1024 * 1024  # OpenAI's limit for transcription uploads
AUDIO = {200: {"content": {media: {} for media in SPEECH_MEDIA.values()}}}


@router.post("/audio/speech", response_class=Response, responses=AUDIO)
async def speech(body: SpeechRequest, state: State, _: Caller) -> Response:
    """Text to speech."""
    speak = state.engine.speak
    audio = await state.runtime.call(lambda: speak(body.input, voice=body.voice, fmt=body.response_format,
                                                   speed=body.speed))
    return Response(audio, media_type=SPEECH_MEDIA[body.response_format])


@router.post("/audio/transcriptions", response_model=Transcription,
             responses={200: {"content": {"text/plain": {}}}})
async def transcriptions(
    state: State, _: Caller,
    file: Annotated[UploadFile, File(description="wav, mp3, flac, ogg/opus, webm or m4a")],
    model: Annotated[str, Form(min_length=1, max_length=256)],
    language: Annotated[str | None, Form(pattern=r"^[a-zA-Z-]{2,12}$")] = None,
    prompt: Annotated[str | None, Form(max_length=4096)] = None,
    response_format: Annotated[TranscriptFormat, Form()] = "json",
    temperature: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0,
) -> Response:
    """Speech to text."""
    data = await file.read(MAX_AUDIO_BYTES + 1)
    if len(data) > MAX_AUDIO_BYTES:
        raise RolecraftError(f"audio files are limited to {MAX_AUDIO_BYTES} bytes", code="request_too_large",
                             status=413, param="file")
    audio = await run_in_threadpool(check_audio, data, param="file")
    if response_format not in ("json", "text"):
        raise RolecraftError(f"response_format {response_format!r} is not supported; use json or text",
                             code="unsupported_parameter", param="response_format")
    transcribe = state.engine.transcribe
    text = await state.runtime.call(lambda: transcribe(audio.data, audio.format, language=language, prompt=prompt))
    if response_format == "text":
        return PlainTextResponse(text)
    return Response(Transcription(text=text).model_dump_json(), media_type="application/json")


@router.get("/sessions/{session_id}/messages/{message_id}/audio", response_class=Response, responses=AUDIO,
            tags=["sessions"])
async def message_audio(session_id: Annotated[str, Path(pattern=SESSION_ID)],
                        message_id: Annotated[int, Path(ge=1, le=MAX_ID)], state: State, caller: Caller) -> Response:
    """A stored reply, spoken in its character's voice (WAV)."""
    text, voice = await run_in_threadpool(_spoken, state.engine, session_id, message_id, caller)
    speak = state.engine.speak
    audio = await state.runtime.call(lambda: speak(text, voice=voice, fmt="wav", speed=1.0))
    return Response(audio, media_type=SPEECH_MEDIA["wav"])


def _spoken(engine: Engine, session_id: str, message_id: int, caller: Principal) -> tuple[str, str | None]:
    """A stored message's text and the voice of the session's character."""
    message = owned_message(engine, session_id, message_id, caller)
    return message.content, engine.character(engine.store.get_session(session_id).character_id).voice
