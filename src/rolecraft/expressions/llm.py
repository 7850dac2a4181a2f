"""The expression label chosen by the chat model itself, constrained to the 28 labels.

A logits processor masks every token that would not continue one of the
label spellings (a token trie built with the model's own tokenizer), so even a
tiny model can only answer with a label, and greedy decoding picks the most
likely one. The first step's masked softmax gives a probability per label (a
first token shared by several labels, like "dis", is split among them). This
does what a llama.cpp grammar would, but in numpy over a handful of allowed ids
per step, and it yields scores.

Give it the chat's own messages as `context` and the classification prompt
extends the chat prompt: llama.cpp reuses the KV cache for the shared prefix, so
the question costs only its own tokens, and the next chat turn still finds its
history cached. Without context it is a short standalone prompt. Only the
embedded llama_cpp backend exposes its logits; other backends get a clear error
(use the lexicon method, `rolecraft.expressions.classify`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rolecraft.errors import RolecraftError
from rolecraft.expressions.classify import LABELS, Expression
from rolecraft.messages import Message

QUESTION = (
    "Which one emotion does this line of dialogue express? Options: " + ", ".join(LABELS) + ".\n\n"
    "Line: {text}\n\nAnswer with one option only."
)
CONTEXT_QUESTION = (
    "(Out of character: which one emotion does your last reply express? Options: " + ", ".join(LABELS) + ". "
    "Answer with one option only.)"
)
SYSTEM = "You label the emotion of lines from role-play dialogue."


class LabelChoice:
    """A llama-cpp-python logits processor that only lets label spellings through."""

    def __init__(self, spellings: dict[str, list[int]], prompt_len: int, eos: int) -> None:
        self.spellings = spellings
        self.prompt_len = prompt_len
        self.eos = eos
        self.first: dict[int, float] = {}

    def allowed(self, generated: list[int]) -> list[int]:
        """Token ids that keep `generated` on the way to some label (end of text once a label is complete)."""
        following: set[int] = set()
        for ids in self.spellings.values():
            if ids[: len(generated)] == generated:
                following.add(ids[len(generated)] if len(ids) > len(generated) else self.eos)
        return sorted(following or {self.eos})

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        generated = [int(t) for t in input_ids[self.prompt_len :]]
        allowed = self.allowed(generated)
        masked = np.full_like(scores, -np.inf)
        masked[allowed] = scores[allowed]
        if not generated:
            logits = scores[allowed].astype(np.float64)
            probs = np.exp(logits - logits.max())
            self.first = dict(zip(allowed, (probs / probs.sum()).tolist(), strict=True))
        return masked

    def label_scores(self) -> dict[str, float]:
        """Probability per label from the first step, shared among labels with the same first token."""
        sharing: dict[int, int] = {}
        for ids in self.spellings.values():
            sharing[ids[0]] = sharing.get(ids[0], 0) + 1
        return {label: round(self.first.get(ids[0], 0.0) / sharing[ids[0]], 4) for label, ids in self.spellings.items()}


def classify_llm(text: str, backend: Any, *, context: Sequence[Message] | None = None) -> Expression:
    """The label the backend's model picks for `text` (greedy, constrained to the labels), with scores."""
    llm = getattr(backend, "llm", None)
    if llm is None or not hasattr(backend, "prompt_tokens") or not hasattr(backend, "tokenize"):
        raise RolecraftError(
            f"the LLM expression method needs the llama_cpp backend, not {getattr(backend, 'name', backend)!r}; "
            "use the lexicon method instead",
            code="unsupported_backend", param="expression_method",
        )
    if context:
        messages = [*context, Message("assistant", text), Message("user", CONTEXT_QUESTION)]
    else:
        messages = [Message("system", SYSTEM), Message("user", QUESTION.format(text=text.strip()))]
    tokens = backend.prompt_tokens(messages)
    spellings = {label: backend.tokenize(label) for label in LABELS}
    longest = max(len(ids) for ids in spellings.values()) + 1
    if len(tokens) + longest >= backend.context_size:
        raise RolecraftError("the reply is too long to classify within the model's context",
                             code="context_overflow", param="text")
    choice = LabelChoice(spellings, len(tokens), llm.token_eos())
    out = llm.create_completion(prompt=tokens, max_tokens=longest, temperature=0.0, repeat_penalty=1.0,
                                logits_processor=[choice])
    answer = str(out["choices"][0]["text"]).strip()
    return Expression(answer if answer in LABELS else "neutral", choice.label_scores())
