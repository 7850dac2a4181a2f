"""Voice: the character's replies spoken aloud (TTS), sentence by sentence.

`tts` holds the engine registry (Piper, espeak-ng), voice resolution from the
character, and WAV synthesis; `sentences` splits streamed text into sentences
(English and Chinese punctuation) and strips what should not be read aloud.
`vad` finds utterances in a live stream (silero), `call` runs a live voice
conversation (VAD → STT → the session turn → spoken sentences, with barge-in)
and `speech` speaks its replies paced to playback. Speech recognition lives in
`rolecraft.perception.stt`.
"""

from rolecraft.voice.sentences import SentenceSplitter, iter_sentences, speakable, split_sentences
from rolecraft.voice.tts import (
    BUNDLED_PIPER_VOICE,
    TextToSpeech,
    Voice,
    available_tts,
    create_tts,
    detect_language,
    parse_voice,
    register_tts,
    resolve_voice,
    stream_sentences,
    synthesize,
)

__all__ = [
    "BUNDLED_PIPER_VOICE",
    "SentenceSplitter",
    "TextToSpeech",
    "Voice",
    "available_tts",
    "create_tts",
    "detect_language",
    "iter_sentences",
    "parse_voice",
    "register_tts",
    "resolve_voice",
    "speakable",
    "split_sentences",
    "stream_sentences",
    "synthesize",
]
