"""A model's chat template rendered once, the same way for chat and for training.

Inference reads `ids(messages)`; training reads `training_ids(messages)`, whose
prompt part is that very token list, plus a loss mask that is 1 only on the
assistant's turns (their text and the end-of-turn marker the model must learn
to emit). Templates are Hugging Face Jinja chat templates, rendered with the
options transformers and llama.cpp use.

Tokenizing is incremental: the rendered text is cut before each turn marker (a
special token such as `<|im_start|>`, which tokenizers never merge across), and
each piece's ids are cached, so a turn tokenizes only the messages that changed.
The cut is used only when it gives exactly the ids of the whole text.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from rolecraft.errors import RolecraftError
from rolecraft.messages import Message

TURN_MARKERS = ("<|im_start|>", "<|start_header_id|>", "<start_of_turn>", "<|user|>", "[INST]")
PIECE_CACHE = 4096
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise RolecraftError(f"the model's chat template refused the conversation: {message}",
                         code="invalid_messages", param="messages")


class ChatTemplate:
    """Renders messages with a Jinja chat template and tokenizes them with `encode`
    (which must parse special tokens written in the text, and add BOS when the model wants it)."""

    def __init__(self, source: str | None, encode: Callable[[str], list[int]], *, bos: str = "",
                 eos: str = "") -> None:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
                                            extensions=[jinja2.ext.loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals.update(raise_exception=_raise, strftime_now=lambda f: datetime.now().strftime(f))
        self.source = source or CHATML
        self._template = env.from_string(self.source)
        self.encode, self.bos, self.eos = encode, bos, eos
        self._pieces: OrderedDict[str, list[int]] = OrderedDict()
        self._lead = encode("")  # what encoding adds before any text: [BOS] or nothing
        self.marker = self._find_marker()

    def _find_marker(self) -> str | None:
        """The turn marker to cut at, if cutting there gives the same ids as encoding the whole text."""
        sample = [Message("system", "Ember, a smith. Ünïcode ✓ 林月"), Message("user", " hi  there\n"),
                  Message("assistant", "Sparks fly."), Message("user", "Ok?")]
        try:
            text = self.text(sample)
        except RolecraftError:
            return None
        for marker in TURN_MARKERS:
            if text.count(marker) >= 2:
                self.marker = marker
                return marker if self._encode_pieces(text) == self.encode(text) else None
        return None

    def _encode_pieces(self, text: str) -> list[int]:
        head, *rest = text.split(self.marker) if self.marker else [text]
        ids = self._piece(head, first=True)
        for piece in rest:
            ids += self._piece(self.marker + piece, first=False)  # type: ignore[operator]
        return ids

    def _piece(self, text: str, *, first: bool) -> list[int]:
        key = ("^" if first else "") + text
        ids = self._pieces.get(key)
        if ids is None:
            ids = self.encode(text)
            if not first and ids[: len(self._lead)] == self._lead:
                ids = ids[len(self._lead):]
            self._pieces[key] = ids
            if len(self._pieces) > PIECE_CACHE:
                self._pieces.popitem(last=False)
        else:
            self._pieces.move_to_end(key)
        return list(ids)

    def text(self, messages: Sequence[Message], *, generation_prompt: bool = True) -> str:
        """The prompt text; with `generation_prompt` it ends where the assistant's reply begins."""
        return self._template.render(messages=[m.as_dict() for m in messages], bos_token=self.bos,
                                     eos_token=self.eos, add_generation_prompt=generation_prompt)

    def ids(self, messages: Sequence[Message], *, generation_prompt: bool = True) -> list[int]:
        """Token ids of `text(...)`: exactly what the model reads (pieces cached between turns)."""
        text = self.text(messages, generation_prompt=generation_prompt)
        return self._encode_pieces(text) if self.marker else self.encode(text)

    def training_ids(self, messages: Sequence[Message],
                     learn: Sequence[bool] | None = None) -> tuple[list[int], list[int]]:
        """Ids of the whole conversation and a mask that is 1 on the turns to learn from
        (`learn`, default: every assistant message) and 0 elsewhere.

        Each such turn starts where the prompt for it (with the generation prompt)
        ends, and runs to the end of the conversation rendered through that turn.
        """
        full = self.ids(messages, generation_prompt=False)
        mask = [0] * len(full)
        learn = learn if learn is not None else [m.role == "assistant" for m in messages]
        for index, message in enumerate(messages):
            if not learn[index] or message.role != "assistant":
                continue
            prompt = self.ids(messages[:index], generation_prompt=True)
            through = self.ids(messages[: index + 1], generation_prompt=False)
            if full[: len(prompt)] != prompt or full[: len(through)] != through:
                raise RolecraftError("this chat template does not render a conversation as a prefix of its "
                                     "continuation, so the character's turns cannot be masked for training",
                                     code="unsupported_template", param="model")
            mask[len(prompt): len(through)] = [1] * (len(through) - len(prompt))
        return full, mask
