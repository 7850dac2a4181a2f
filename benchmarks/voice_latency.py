"""Voice-to-voice latency of a call, and barge-in reaction, through the real Call pipeline.

Run: .venv/bin/python benchmarks/voice_latency.py [--turns 20] [--barge-ins 3] [--threads 1]
One session with the bundled SmolLM2 (KV cache reused turn to turn), Whisper base, silero VAD and Piper,
in this process (the same `Call` the WebSocket and `rolecraft talk` drive). Each utterance (Piper's
voice) is fed at real-time pace in 100 ms frames, then silence until the reply has been spoken.
- Latency: end of the user's speech (the last speech sample fed) to the first reply audio frame,
  p50/p95, split into VAD hangover (until end of utterance is declared), STT, first token (prompt
  and first token of the turn), first sentence (rest of the first sentence) and TTS (its synthesis).
- Barge-in: after the first audio of some replies, the user says "Wait, stop."; reaction is speech
  onset (the first loud sample fed) to the moment speech stops being sent (VAD detection + stopping).
- Baseline, same run: the first token of typed turns (the same questions as text) on another session.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterator

import numpy as np
from _common import median, percentile, temp_settings

from rolecraft.conversation import Engine
from rolecraft.perception import decode_audio
from rolecraft.server.runtime import Runtime
from rolecraft.voice import BUNDLED_PIPER_VOICE, synthesize
from rolecraft.voice.call import Call

QUESTIONS = [
    "Hello, who are you?", "Do you sell hot soup here?", "How far is the next village?", "Is the pass open?",
    "What is your name?", "Can I get a room?", "Tell me about the storm.", "Who owns this tavern?",
    "Do you have any ale?", "Where are you from?", "Is it cold outside?", "What do you cook?",
    "Have you seen a knight?", "How much for a meal?", "Are you happy here?", "What is that noise?",
    "Can you help me?", "Where is the stable?", "Do you like music?", "Goodbye, and thank you.",
]
FRAME_S, RATE = 0.1, 16_000


class Clock:
    """Wall times of every event, by type and response."""

    def __init__(self) -> None:
        self.events: list[tuple[float, dict]] = []

    async def __call__(self, event: dict) -> None:
        self.events.append((time.monotonic(), event))

    def first(self, kind: str, after: float, **match: str) -> tuple[float, dict] | None:
        for at, event in self.events:
            if at >= after and event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return at, event
        return None


def clip(text: str) -> np.ndarray:
    return decode_audio(synthesize(text, f"piper:{BUNDLED_PIPER_VOICE}"))[0]


async def feed(call: Call, samples: np.ndarray) -> tuple[float, float]:
    """Feed at real-time pace; (wall time of the first loud sample, of the last loud sample)."""
    step, start = int(RATE * FRAME_S), time.monotonic()
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    onset = start + (loud[0] / RATE if loud.size else 0.0)
    offset = start + (loud[-1] / RATE if loud.size else 0.0)
    for n, i in enumerate(range(0, len(samples), step)):
        chunk = (np.clip(samples[i:i + step], -1, 1) * 32767).astype("<i2").tobytes()
        await call.append(chunk)
        await asyncio.sleep(max(0.0, start + (n + 1) * FRAME_S - time.monotonic()))
    return onset, offset


async def silence_until(call: Call, clock: Clock, after: float, kind: str, limit_s: float = 300.0) -> None:
    quiet = np.zeros(int(RATE * FRAME_S), dtype=np.float32)
    deadline = time.monotonic() + limit_s
    while clock.first(kind, after) is None and time.monotonic() < deadline:
        await feed(call, quiet)


async def one_turn(call: Call, clock: Clock, speech: np.ndarray, stop: np.ndarray | None) -> dict:
    mark = time.monotonic()
    _, speech_end = await feed(call, np.concatenate([speech, np.zeros(int(RATE * 0.7), np.float32)]))
    await silence_until(call, clock, mark, "response.audio.delta")
    first_audio = clock.first("response.audio.delta", mark)
    stopped = clock.first("input_audio_buffer.speech_stopped", mark)
    row: dict = {}
    if first_audio and stopped:
        row = {"latency": first_audio[0] - speech_end, "vad": stopped[0] - speech_end}
    if stop is not None and first_audio:
        onset, _ = await feed(call, stop)
        await silence_until(call, clock, onset, "response.done")
        done = clock.first("response.done", onset)
        heard = clock.first("input_audio_buffer.speech_started", onset)
        if done and heard and done[1]["response"]["status"] == "cancelled":
            row["barge_in"] = heard[0] + done[1]["response"]["rolecraft"]["stopped_after_s"] - onset
    await call.idle()
    first = first_audio[1]["response_id"] if first_audio else None
    done = [e for at, e in clock.events if at >= mark and e["type"] == "response.done"
            and e["response"]["id"] == first]
    if done and "latency" in row and "first_audio_s" in done[0]["response"]["rolecraft"]["timings"]:
        t = done[0]["response"]["rolecraft"]["timings"]
        row |= {"stt_wait": t["stt_wait_s"], "stt": t["stt_s"],
                "first_token": t["first_token_s"] - t["stt_s"] - t["stt_wait_s"],
                "first_sentence": t["first_sentence_s"] - t["first_token_s"],
                "tts": t["first_audio_s"] - t["first_sentence_s"]}
        if "model_ttft_s" in t:  # only finished replies know it
            row["model_ttft"] = t["model_ttft_s"]
    return row


async def main(turns: int, barge_ins: int, threads: int) -> None:
    settings = temp_settings(temperature=0.0, max_tokens=40, seed=1, n_threads=threads, long_term_memory=False)
    runtime = Runtime(Engine(settings))
    await runtime.call(lambda: runtime.engine.backend)
    session = runtime.engine.new_session("ember")
    clock = Clock()
    call = await asyncio.to_thread(Call, runtime, session.id, clock)
    stop = np.concatenate([np.zeros(int(RATE * 0.3), np.float32), clip("Wait, stop."), np.zeros(RATE, np.float32)])
    every = max(1, turns // max(1, barge_ins)) if barge_ins else 0
    rows = []
    for n, question in enumerate(QUESTIONS[:turns]):
        interrupt = stop if every and n % every == every - 1 and sum("barge_in" in r for r in rows) < barge_ins \
            else None
        rows.append(await one_turn(call, clock, clip(question), interrupt))
        print(f"turn {n + 1:2d}: " + ", ".join(f"{k} {v:.2f}s" for k, v in rows[-1].items()), flush=True)
    await call.close()
    rows.extend(await typed_turns(runtime, QUESTIONS[:max(3, turns // 4)]))
    runtime.close()
    report(rows)


def _typed_turn(engine: Engine, session_id: str, text: str) -> Iterator[str]:
    yield from engine.session(session_id).send(text)


async def typed_turns(runtime: Runtime, questions: list[str]) -> list[dict]:
    """First token of the same questions typed, through the same turn path: the baseline without voice."""
    session_id = runtime.engine.new_session("ember").id
    rows = []
    for question in questions:
        start, first = time.monotonic(), None
        async for _ in runtime.run(_typed_turn(runtime.engine, session_id, question)).pieces():
            first = first or time.monotonic() - start
        rows.append({"typed_first_token": first or 0.0})
    return rows


def report(rows: list[dict]) -> None:
    print(f"\n{'part':<16} {'p50':>7} {'p95':>7}  (n)")
    for key in ("latency", "vad", "stt_wait", "stt", "first_token", "model_ttft", "first_sentence", "tts", "barge_in",
                "typed_first_token"):
        values = [r[key] for r in rows if key in r]
        if values:
            print(f"{key:<16} {median(values):7.2f} {percentile(values, 95):7.2f}  ({len(values)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--barge-ins", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.barge_ins, args.threads))
