"""Rolling summary of the messages that no longer fit in the context.

The builder drops old messages a page at a time; each time the cut moves, the newly
dropped messages are folded into the previous summary by the model. If the model
gives nothing usable, an extractive summary (first sentence of each message) is
used instead, so the summary never goes missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rolecraft.backends.base import Backend, SamplingParams
from rolecraft.messages import Message

MAX_CHARS = 1200


def first_sentence(text: str, limit: int = 160) -> str:
    sentence = re.split(r"(?<=[.!?。！？])\s+", text.strip(), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def extractive(previous: str, lines: Sequence[tuple[str, str]]) -> str:
    """The fallback: previous summary plus the first sentence of each dropped message, one per line,
    skipping near-duplicates so small talk does not push out what was said once."""
    kept = [line for line in previous.splitlines() if line.strip()]
    seen = [_words(line) for line in kept]
    for name, text in lines:
        line = f"{name}: {first_sentence(text)}"
        words = _words(line)
        if any(len(words & other) >= 0.5 * len(words | other) for other in seen):
            continue
        kept.append(line)
        seen.append(words)
    while len("\n".join(kept)) > MAX_CHARS and len(kept) > 1:
        kept.pop(0)
    return "\n".join(kept)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def summarize(backend: Backend, previous: str, lines: Sequence[tuple[str, str]], char: str,
              max_tokens: int = 120) -> str:
    """Fold `lines` (speaker, text) into `previous` with the model; extractive on failure."""
    transcript = "\n".join(f"{name}: {text}" for name, text in lines)
    prompt = [
        Message("system", "You write short, factual summaries of role-play conversations. "
                "Keep names, facts about the user, promises and events. At most 5 sentences."),
        Message("user", f"Summary so far: {previous or '(none)'}\n\nNew part of the conversation with {char}:\n"
                f"{transcript}\n\nWrite the updated summary."),
    ]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, stop=["\n\n"])
    try:
        text = "".join(e.text for e in backend.stream(prompt, params)).strip()
    except Exception:
        text = ""
    if len(text) < 20:
        return extractive(previous, lines)
    return text[:MAX_CHARS]
