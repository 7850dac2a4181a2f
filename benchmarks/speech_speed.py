"""Speech speed: TTS and STT real-time factors, round-trip word error rate, and time to first audio.

Run: .venv/bin/python benchmarks/speech_speed.py [--reps 3] [--tokens 80]
- TTS real-time factor (synthesis time / audio length) for Piper (en_US-joe-medium), with espeak-ng beside it.
- STT real-time factor for PocketSphinx on a ~10 s clip spoken by Piper, and the word error rate of the round
  trip (espeak-ng's voice through PocketSphinx as the comparison).
- Time to first audio: a real reply streamed from the bundled SmolLM2 (1 thread); sentence streaming speaks
  each sentence when it completes, the baseline waits for the whole reply and speaks it in one go.
Real-time factors below 1 are faster than real time. Medians over --reps.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import wave

from _common import temp_settings

from rolecraft.evaluation.metrics import word_error_rate
from rolecraft.perception import decode_audio, transcribe
from rolecraft.voice import SentenceSplitter, synthesize

CLIP_TEXT = (
    "The blacksmith lit the forge before dawn. She hammered the glowing steel until the blade was straight. "
    "Then she cooled it in the water barrel and smiled at her work. Tomorrow the knight will come to collect it."
)
SHORT_TEXT = "The quick brown fox jumps over the lazy dog. I would like a cup of coffee, please."
PROMPT = "Tell me about your forge in three short sentences."


def seconds_of(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as clip:
        return clip.getnframes() / clip.getframerate()


def tts_rtf(voice: str, reps: int) -> tuple[float, float, bytes]:
    started = time.perf_counter()
    audio = synthesize(CLIP_TEXT, voice)
    cold = time.perf_counter() - started
    runs = []
    for _ in range(reps):
        started = time.perf_counter()
        audio = synthesize(CLIP_TEXT, voice)
        runs.append((time.perf_counter() - started) / seconds_of(audio))
    return statistics.median(runs), cold, audio


def stt_figures(audio: bytes, reps: int, reference: str = CLIP_TEXT) -> tuple[float, float, str]:
    samples, rate = decode_audio(audio)
    transcribe(samples[: rate // 2])  # load the model outside the timing
    runs, text = [], ""
    for _ in range(reps):
        started = time.perf_counter()
        text = transcribe(samples).text
        runs.append((time.perf_counter() - started) / (len(samples) / rate))
    return statistics.median(runs), word_error_rate(reference, text), text


def first_audio(tokens: int) -> None:
    from rolecraft.backends.base import SamplingParams
    from rolecraft.backends.llama_cpp import LlamaCppBackend
    from rolecraft.messages import Message

    backend = LlamaCppBackend(temp_settings(n_threads=1, n_ctx=1024))
    messages = [Message("system", "You are Ember, a cheerful blacksmith."), Message("user", PROMPT)]
    params = SamplingParams(max_tokens=tokens, temperature=0.0, repeat_penalty=1.1)
    list(backend.stream(messages, params))  # warm the prompt cache so both runs start alike
    started = time.perf_counter()
    splitter, first, pieces = SentenceSplitter(), None, []
    for event in backend.stream(messages, params):
        pieces.append(event.text)
        for sentence in splitter.feed(event.text):
            if first is None:
                synthesize(sentence, "piper:en_US-joe-medium")
                first = time.perf_counter()
    reply_end = time.perf_counter()
    for sentence in splitter.flush():
        if first is None:
            synthesize(sentence, "piper:en_US-joe-medium")
            first = time.perf_counter()
    started_whole = time.perf_counter()
    synthesize("".join(pieces), "piper:en_US-joe-medium")
    whole = time.perf_counter() - started_whole
    backend.close()
    print(f"reply: {len(''.join(pieces))} chars in {reply_end - started:.2f} s: {''.join(pieces)[:120]!r}...")
    print(f"  sentence streaming: first audio {first - started:.2f} s after the reply began, "
          f"{first - reply_end:+.2f} s relative to its end")
    print(f"  baseline (speak the whole reply at the end): first audio {whole:+.2f} s after the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=80)
    args = parser.parse_args()
    piper_rtf, piper_cold, piper_audio = tts_rtf("piper:en_US-joe-medium", args.reps)
    espeak_rtf, espeak_cold, espeak_audio = tts_rtf("espeak:en-us", args.reps)
    print(f"TTS real-time factor: Piper {piper_rtf:.3f} (cold first call {piper_cold:.2f} s incl. voice load), "
          f"espeak-ng {espeak_rtf:.3f} (first call {espeak_cold:.2f} s)")
    stt_rtf, piper_wer, heard = stt_figures(piper_audio, args.reps)
    _, espeak_wer, espeak_heard = stt_figures(espeak_audio, 1)
    print(f"STT real-time factor, PocketSphinx on a {seconds_of(piper_audio):.1f} s clip: {stt_rtf:.3f}")
    _, short_wer, _ = stt_figures(synthesize(SHORT_TEXT, "piper:en_US-joe-medium"), 1, SHORT_TEXT)
    print(f"round-trip WER on the 10 s story: Piper -> PocketSphinx {piper_wer:.1%}; "
          f"espeak-ng -> PocketSphinx {espeak_wer:.1%}")
    print(f"round-trip WER on the test sentence (fox, coffee): Piper -> PocketSphinx {short_wer:.1%}")
    print(f"  heard (Piper):  {heard}")
    print(f"  heard (espeak): {espeak_heard}")
    first_audio(args.tokens)


if __name__ == "__main__":
    main()
