"""A live voice call with a character: audio frames in, events and speech out, whatever carries them.

The realtime WebSocket and `rolecraft talk --input` both drive a `Call`: they
feed PCM16 audio and a few commands, and receive JSON-ready events named after
the OpenAI Realtime API (see `rolecraft.server.realtime.protocol`).

The pipeline: silero VAD segments the incoming audio; at the end of an
utterance Whisper (or the configured STT) transcribes it (partial transcripts
are sent while the user is still speaking, when the recogniser runs well
faster than real time); the transcript goes through the
engine's one session turn (`engine.session(id).send(...)`) on the model thread;
each finished sentence of the reply is spoken at once (the character's voice,
Chinese text in a Chinese voice) and sent as audio deltas paced a little ahead
of playback, preceded by its expression label.

Barge-in: speech starting while the character is audible stops generation and
speech at once; the reply is stored only as far as it was heard (by the
playback clock: audio is never sent more than `audio_lead_s` ahead) and marked
`interrupted` in its meta. A call closed mid-reply stores nothing of that
reply. Every buffer is bounded: the VAD keeps at most one utterance, and input
arriving faster than real time (beyond `max_ahead_s`) ends the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rolecraft.errors import RolecraftError
from rolecraft.perception.stt import SpeechToText, Transcript
from rolecraft.voice.sentences import SentenceSplitter
from rolecraft.voice.vad import RATE, Segmenter, VadConfig, VadEvent

if TYPE_CHECKING:
    from rolecraft.server.runtime import Run, Runtime

Emit = Callable[[dict[str, Any]], Awaitable[None]]
MAX_PARTIAL_RTF = 0.35
CLOSE_TOO_FAST = 4001
CLOSE_NOT_READING = 4002


class CallClosedError(Exception):
    """The call must end: a WebSocket close code and its reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class CallOptions:
    """What `session.update` can change."""

    input_rate: int = RATE
    output_rate: int = 24_000
    language: str | None = None
    partial_s: float = 1.0
    max_ahead_s: float = 5.0
    audio_lead_s: float = 0.3
    vad: VadConfig = field(default_factory=VadConfig)


@dataclass
class Spoken:
    """A sentence on the playback timeline (seconds from the reply's first audio)."""

    text: str
    start_s: float
    end_s: float


@dataclass
class Response:
    """The reply in flight: its id, generation, speech, and what has been sent of it."""

    id: str
    item_id: str
    text: str = ""
    spoken: list[Spoken] = field(default_factory=list)
    sent_s: float = 0.0
    play_start: float | None = None
    run: Run | None = None
    box: list[Any] = field(default_factory=list)  # the Turn, once the model thread has planned it
    speaker: Any = None
    task: asyncio.Task | None = None
    finished: bool = False
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def turn(self) -> Any:
        return self.box[0] if self.box else None

    def audible_until(self) -> float:
        return (self.play_start or 0.0) + self.sent_s

    def heard(self, now: float) -> tuple[str, float]:
        """The words already played at `now`: whole sentences, then the played share of the current one."""
        played = min(max(0.0, now - (self.play_start or now)), self.sent_s)
        words = []
        for part in self.spoken:
            if part.end_s <= played:
                words.append(part.text)
            elif part.start_s < played:
                share = (played - part.start_s) / max(part.end_s - part.start_s, 1e-6)
                words.append(_cut(part.text, share))
        return " ".join(w for w in words if w).strip(), played


def _cut(text: str, share: float) -> str:
    """The first `share` of a sentence, at a word boundary (characters for Chinese)."""
    if " " not in text.strip():
        return text[: int(len(text) * share)]
    words = text.split()
    return " ".join(words[: int(len(words) * share)])


class Call:
    """One voice conversation on one stored session."""

    def __init__(self, runtime: Runtime, session_id: str, emit: Emit, options: CallOptions | None = None) -> None:
        self.runtime, self.session_id, self.emit = runtime, session_id, emit
        self.options = options or CallOptions()
        self.engine = runtime.engine
        self.segmenter = Segmenter(self.options.vad)
        self.response: Response | None = None
        self.tasks: set[asyncio.Task] = set()
        self.started = time.monotonic()
        self.received_s = 0.0
        self._ids = itertools.count(1)
        self._item: str | None = None
        self._partial: asyncio.Task | None = None
        self._partial_at = 0.0
        self.stt_rtf = 0.0  # recognition time / audio time of the last utterance
        self._resampler: Any = None
        self._stt = self._recogniser()  # loaded now (calls are opened off the event loop), not mid-utterance
        self._in_order = asyncio.Lock()  # utterances are answered one after another
        self.character = self.engine.session(session_id).character
        self.language = self.options.language or character_language(self.character)
        self.detected: str | None = None  # the language Whisper found in the last utterance, when not hinted

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    async def send(self, kind: str, **fields: Any) -> None:
        await self.emit({"type": kind, "event_id": self.new_id("event"), **fields})

    def describe(self) -> dict[str, Any]:
        """The session object of `session.created` / `session.updated`."""
        vad = self.options.vad
        return {"id": self.session_id, "object": "realtime.session", "model": self.character.name,
                "modalities": ["audio", "text"], "input_audio_format": "pcm16", "output_audio_format": "pcm16",
                "input_sample_rate": self.options.input_rate, "output_sample_rate": self.options.output_rate,
                "input_audio_transcription": {"model": self.engine.settings.stt_backend, "language": self.language},
                "turn_detection": {"type": "server_vad", "threshold": vad.threshold,
                                   "silence_duration_ms": vad.hangover_ms, "prefix_padding_ms": vad.preroll_ms}}

    def update(self, input_rate: int | None = None, output_rate: int | None = None, language: str | None = None,
               partial_s: float | None = None) -> None:
        """Apply `session.update` fields (rates are checked by the protocol)."""
        if input_rate is not None and input_rate != self.options.input_rate:
            self.options.input_rate, self._resampler = input_rate, None
        if output_rate is not None:
            self.options.output_rate = output_rate
        if language is not None:
            self.language, self.detected = language or None, None
        if partial_s is not None:
            self.options.partial_s = partial_s

    # input ------------------------------------------------------------------

    async def append(self, pcm16: bytes) -> None:
        """Little-endian 16-bit mono PCM at the input rate."""
        if len(pcm16) % 2:
            raise RolecraftError("input audio must be 16-bit PCM (an even number of bytes)", code="invalid_audio",
                                 param="audio")
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        self.received_s += len(samples) / self.options.input_rate
        if self.received_s > time.monotonic() - self.started + self.options.max_ahead_s:
            raise CallClosedError(CLOSE_TOO_FAST, f"input audio arrives faster than real time (more than "
                                             f"{self.options.max_ahead_s:.0f} s ahead)")
        for event in self.segmenter.feed(self._resample(samples)):
            await self._on_vad(event)
        self._maybe_partial()

    def _resample(self, samples: np.ndarray) -> np.ndarray:
        if self.options.input_rate == RATE:
            return samples
        if self._resampler is None:
            import soxr

            self._resampler = soxr.ResampleStream(self.options.input_rate, RATE, 1, dtype="float32")
        return self._resampler.resample_chunk(samples)

    async def commit(self) -> None:
        """End the current utterance now (`input_audio_buffer.commit`)."""
        event = self.segmenter.flush()
        if event is None:
            await self.send("error", error={"type": "invalid_request_error", "code": "input_audio_buffer_empty",
                                            "message": "no speech in the input audio buffer to commit"})
            return
        await self._on_vad(event)

    async def _on_vad(self, event: VadEvent) -> None:
        if event.kind == "start":
            self._item = self.new_id("item")
            await self.send("input_audio_buffer.speech_started", audio_start_ms=int(event.at_s * 1000),
                            item_id=self._item)
            await self.interrupt("turn_detected")
            return
        item, self._item = self._item or self.new_id("item"), None
        ended = time.monotonic()
        await self.send("input_audio_buffer.speech_stopped", audio_end_ms=int(event.at_s * 1000), item_id=item)
        await self.send("input_audio_buffer.committed", item_id=item)
        assert event.samples is not None
        self.spawn(self._respond(event.samples, item, ended))

    def _maybe_partial(self) -> None:
        """A partial transcript of the utterance so far, every `partial_s` seconds of speech, one at a time,
        and only while the recogniser runs well faster than real time (else partials would delay the final)."""
        every = self.options.partial_s
        if not every or not self.segmenter.speaking or (self._partial and not self._partial.done()):
            return
        if self.stt_rtf > MAX_PARTIAL_RTF:
            return
        samples = self.segmenter.utterance()
        if len(samples) / RATE - self._partial_at < every:
            return
        self._partial_at = len(samples) / RATE
        self._partial = self.spawn(self._transcribe_partial(samples, self._item))

    async def _transcribe_partial(self, samples: np.ndarray, item: str | None) -> None:
        heard = await asyncio.to_thread(self._stt.transcribe, samples, language=self.hint(), words=False)
        if heard.text and item == self._item:
            await self.send("conversation.item.input_audio_transcription.delta", item_id=item, content_index=0,
                            delta=heard.text, rolecraft={"partial": True})

    def hint(self) -> str | None:
        """The language to tell the recogniser: the session's or card's, else the one heard last
        (detection costs Whisper a second pass, so only the first utterance of a call pays it)."""
        return self.language or self.detected

    def _recogniser(self) -> Any:
        from rolecraft.perception.stt import create_stt

        settings = self.engine.settings
        return create_stt(settings.stt_backend, model=settings.stt_model)

    def spawn(self, job: Awaitable[None]) -> asyncio.Task:
        task = asyncio.ensure_future(job)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # the reply --------------------------------------------------------------

    async def _respond(self, samples: np.ndarray, item: str, ended: float) -> None:
        self._partial_at = 0.0
        if self._partial is not None:
            with contextlib.suppress(Exception):
                await self._partial
        async with self._in_order:
            await self._answer(samples, item, ended)

    async def _answer(self, samples: np.ndarray, item: str, ended: float) -> None:
        began = time.monotonic()
        heard = await asyncio.to_thread(self._stt.transcribe, samples, language=self.hint(), words=False)
        spent = time.monotonic() - began
        self.detected = heard.language or self.detected
        self.stt_rtf = spent / max(len(samples) / RATE, 0.1)
        marks = {"vad_hangover_s": self.options.vad.hangover_ms / 1000, "stt_wait_s": began - ended, "stt_s": spent}
        await self.send("conversation.item.input_audio_transcription.completed", item_id=item, content_index=0,
                        transcript=heard.text, language=heard.language)
        if not heard.text.strip():
            return
        response = Response(self.new_id("resp"), self.new_id("item"), marks=marks | {"_ended": ended})
        self.response = response
        response.task = asyncio.current_task()
        await self.send("response.created", response={"id": response.id, "object": "realtime.response",
                                                       "status": "in_progress"})
        from rolecraft.voice.tts import wav_bytes

        clip = await asyncio.to_thread(wav_bytes, samples, RATE)
        try:
            await self._generate(response, heard, clip)
        except asyncio.CancelledError:
            raise
        except RolecraftError as exc:
            await self._fail(response, exc)

    async def _generate(self, response: Response, heard: Transcript, clip: bytes) -> None:
        from rolecraft.voice.speech import Speaker

        speaker = Speaker(self, response)
        response.run = self.runtime.run(_voice_turn(self.engine, self.session_id, heard, clip, response.box),
                                        key=self.session_id)
        splitter = SentenceSplitter()
        async for piece in response.run.pieces():
            response.marks.setdefault("first_token_s", time.monotonic() - response.marks["_ended"])
            response.text += piece
            await self.send("response.audio_transcript.delta", response_id=response.id, item_id=response.item_id,
                            delta=piece)
            for sentence in splitter.feed(piece):
                speaker.say(sentence)
        for sentence in splitter.flush():
            speaker.say(sentence)
        await speaker.finish()
        await self._done(response)

    async def _done(self, response: Response) -> None:
        result = response.turn.result if response.turn is not None else None
        response.finished = True
        if result is not None:
            response.marks["model_ttft_s"] = result.ttft_s  # prompt evaluation to first token, on the model
        marks = _timings(response)
        await self.send("response.audio.done", response_id=response.id, item_id=response.item_id)
        await self.send("response.audio_transcript.done", response_id=response.id, item_id=response.item_id,
                        transcript=response.text)
        ids = [m.id for m in result.messages] if result else []
        await self.send("response.done", response={
            "id": response.id, "object": "realtime.response", "status": "completed",
            "output": [{"id": response.item_id, "type": "message", "role": "assistant",
                        "content": [{"type": "audio", "transcript": response.text}]}],
            "usage": {"input_tokens": result.prompt_tokens, "output_tokens": result.completion_tokens} if result
            else None,
            "rolecraft": {"message_ids": ids, "timings": marks}})

    async def _fail(self, response: Response, exc: RolecraftError) -> None:
        if self.response is response:
            self.response = None
        await self.send("error", error={"type": exc.type, "code": exc.code, "message": exc.message})
        await self.send("response.done", response={"id": response.id, "object": "realtime.response",
                                                   "status": "failed"})

    # interruption and the end -------------------------------------------------

    async def interrupt(self, reason: str) -> None:
        """Barge-in or `response.cancel`: stop generation and speech now, store what was heard."""
        response, now = self.response, time.monotonic()
        if response is None or (response.finished and now >= response.audible_until()):
            return
        self.response = None
        if response.speaker is not None:
            response.speaker.stop()
        if response.run is not None:
            response.run.cancel()
        if response.task is not None and not response.task.done():
            response.task.cancel()
        stopped = time.monotonic() - now
        self.spawn(self._store_cut(response, reason, now, stopped))

    async def _store_cut(self, response: Response, reason: str, now: float, stopped: float) -> None:
        """Store what was heard once the model thread is free (the VAD goes on listening meanwhile)."""
        text, played = response.heard(now)
        stored = await self.runtime.call(_store_heard, self.engine, response.turn, text, played, key=self.session_id)
        await self.send("response.done", response={
            "id": response.id, "object": "realtime.response", "status": "cancelled",
            "status_details": {"type": "cancelled", "reason": reason},
            "rolecraft": {"heard": text, "heard_s": round(played, 3), "message_ids": stored,
                          "stopped_after_s": round(stopped, 4), "timings": _timings(response)}})

    async def close(self) -> None:
        """The client went away: stop everything; a reply not yet finished is not stored."""
        if self.response is not None and self.response.run is not None:
            self.response.run.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until every utterance has been answered (used by `rolecraft talk --input`)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        response = self.response
        if response is not None and response.finished:
            await asyncio.sleep(max(0.0, response.audible_until() - time.monotonic()))


def _timings(response: Response) -> dict[str, float]:
    """Seconds from the end of the utterance to each step of the reply (the `response.done` timings)."""
    return {k: round(v, 3) for k, v in response.marks.items() if not k.startswith("_")}


def character_language(character: Any) -> str | None:
    """A language hint from the card: 'zh' when its text is mostly Chinese, else None (Whisper detects)."""
    from rolecraft.voice.tts import detect_language

    text = " ".join(filter(None, [character.name, character.description, character.first_mes]))
    return "zh" if detect_language(text) == "zh" else None


def _voice_turn(engine: Any, session_id: str, heard: Transcript, clip: bytes, box: list[Any]) -> Any:
    """The one session turn through the one perception path, with the transcript the call already made:
    the user message records the recording and how it was said, and the prompt reads it."""
    turn = engine.session(session_id).send(heard.text, audio=clip, heard=_Heard(heard))
    turn.user_meta = {**turn.user_meta, "voice_call": True}
    box.append(turn)
    yield from turn
    return turn.result


class _Heard(SpeechToText):
    """The transcript already made during the call, handed to `observe_audio` instead of listening twice."""

    def __init__(self, heard: Transcript) -> None:
        self.heard, self.name = heard, heard.backend

    def transcribe(self, samples: np.ndarray, *, language: str | None = None, words: bool = True) -> Transcript:
        return self.heard


def _store_heard(engine: Any, turn: Any, text: str, played: float) -> list[int]:
    """Store the interrupted reply as far as it was heard (model thread: after the cancelled generation)."""
    if turn is None:
        return []
    session, meta = turn.session, {"interrupted": True, "heard_s": round(played, 3)}
    if turn.result is not None:  # generation had finished and stored the whole reply: cut it
        user, reply = turn.result.messages[0], turn.result.messages[-1]
        engine.store.delete_message(reply.id)
        if not text:
            return [user.id]
        from rolecraft.store.records import NewMessage

        cut = NewMessage("assistant", reply.name, text, reply.meta | meta)
        return [user.id, *(m.id for m in engine.store.append(session.id, user.id, [cut]))]
    if not text:
        from rolecraft.store.records import NewMessage

        mine = NewMessage("user", session.user_name, turn.new_user, turn.user_meta)
        session.keep(turn.blobs)
        return [m.id for m in engine.store.append(session.id, turn.parent_id, [mine], expect_head=turn.head)]
    stored = session.commit(turn.parent_id, turn.new_user, text, meta, turn.user_meta, turn.speaker,
                            expect_head=turn.head, blobs=turn.blobs)
    return [m.id for m in stored]
