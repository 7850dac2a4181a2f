"""`rolecraft talk`: a voice call with a character, through the same `Call` pipeline as /v1/realtime.

With `--input FILE.wav` a recorded conversation is played into the call at
real-time pace (the VAD, barge-in and pacing see it as a microphone) and the
event timeline is printed: for scripting and tests. Without it, the default
microphone is used when `sounddevice` and a device exist, and replies play
on the default output.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.settings import Settings

FRAME_S = 0.1
QUIET = {"response.audio.delta", "response.audio_transcript.delta"}


class Timeline:
    """Prints each event with its time since the call began; audio and text deltas are counted, not printed."""

    def __init__(self, as_json: bool, player: Any = None) -> None:
        self.start = time.monotonic()
        self.as_json, self.player = as_json, player
        self.audio_s = 0.0
        self.rate = 24_000

    async def __call__(self, event: dict[str, Any]) -> None:
        at = time.monotonic() - self.start
        kind = event["type"]
        if kind == "session.created":
            self.rate = event["session"]["output_sample_rate"]
        if kind == "response.audio.delta":
            pcm = base64.b64decode(event["delta"])
            self.audio_s += len(pcm) / 2 / self.rate
            if self.player is not None:
                self.player.write(pcm)
        if self.as_json:
            click.echo(json.dumps({"t": round(at, 3), **event}, ensure_ascii=False))
        elif kind not in QUIET:
            click.echo(f"{at:7.2f}s  {kind:<55} {_summary(event)}")


def _summary(event: dict[str, Any]) -> str:
    for key in ("transcript", "text", "delta"):
        if isinstance(event.get(key), str):
            extra = f" [{event['expression']}]" if event.get("expression") else ""
            return f"{event[key]!r}{extra}"
    if "response" in event:
        response = event["response"]
        extra = response.get("rolecraft") or {}
        return f"{response.get('status')} {json.dumps(extra, ensure_ascii=False)}" if extra else response["status"]
    if "error" in event:
        return event["error"]["message"]
    return ""


async def _play_file(call: Any, path: Path) -> None:
    from rolecraft.perception.audio import decode_audio

    samples, rate = decode_audio(path.read_bytes())
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    step = int(rate * FRAME_S) * 2
    start = time.monotonic()
    for n, i in enumerate(range(0, len(pcm), step)):
        await call.append(pcm[i:i + step])
        await asyncio.sleep(max(0.0, start + (n + 1) * FRAME_S - time.monotonic()))
    await call.idle()


async def _microphone(call: Any) -> None:
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise missing_extra("sounddevice", "voice") from exc
    loop, frames = asyncio.get_running_loop(), asyncio.Queue()

    def heard(data: Any, *_: Any) -> None:
        loop.call_soon_threadsafe(frames.put_nowait, bytes(data))

    try:
        stream = sounddevice.RawInputStream(samplerate=16_000, channels=1, dtype="int16",
                                            blocksize=int(16_000 * FRAME_S), callback=heard)
    except Exception as exc:  # PortAudio raises its own error types
        raise RolecraftError(f"no microphone: {exc}; use --input FILE.wav", code="no_microphone") from exc
    with stream:
        click.echo("(listening; Ctrl-C to hang up)", err=True)
        while True:
            await call.append(await frames.get())


async def _talk(settings: Settings, character: str, session_id: str | None, source: Path | None,
                as_json: bool) -> None:
    from rolecraft.conversation import Engine
    from rolecraft.server.runtime import Runtime
    from rolecraft.voice.call import Call

    runtime = Runtime(Engine(settings))
    try:
        engine = runtime.engine
        await runtime.call(lambda: engine.backend)
        sid = session_id or (await asyncio.to_thread(engine.new_session, character)).id
        timeline = Timeline(as_json, None if source else _speaker_out())
        call = await asyncio.to_thread(Call, runtime, sid, timeline)
        await call.send("session.created", session=call.describe())
        try:
            await (_play_file(call, source) if source else _microphone(call))
        finally:
            await call.close()
        if not as_json:
            click.echo(f"(session {sid}; {timeline.audio_s:.1f} s of reply audio)")
    finally:
        runtime.close()


def _speaker_out() -> Any:
    try:
        import sounddevice

        out = sounddevice.RawOutputStream(samplerate=24_000, channels=1, dtype="int16")
        out.start()
        return out
    except Exception:  # no sound device: the timeline still prints
        return None


@click.command("talk")
@click.argument("character", required=False)
@click.option("--input", "source", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Play this recording (WAV, FLAC, OGG, MP3) into the call instead of the microphone.")
@click.option("--session", "session_id", help="Talk in this stored session (default: a new one).")
@click.option("--json", "as_json", is_flag=True, help="Print every event as one JSON line.")
@click.pass_context
def command(ctx: click.Context, character: str | None, source: Path | None, session_id: str | None,
            as_json: bool) -> None:
    """Talk to CHARACTER by voice: VAD, speech recognition, the turn, and spoken replies with barge-in."""
    settings: Settings = ctx.find_root().obj
    try:
        asyncio.run(_talk(settings, character or settings.character, session_id, source, as_json))
    except KeyboardInterrupt:
        click.echo("(hung up)", err=True)
