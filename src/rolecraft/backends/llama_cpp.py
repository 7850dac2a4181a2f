"""Embedded llama.cpp backend (llama-cpp-python): the offline default.

We render the model's own chat template and tokenize the prompt ourselves, so
the prompt shown by --show-prompt, the token budget and what the model reads
are the same thing. llama-cpp-python keeps the KV cache of the previous call
and re-evaluates only the tokens after the longest common prefix; the context
builder keeps that prefix stable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rolecraft.backends.base import Backend, Capabilities, SamplingParams, StreamEvent
from rolecraft.backends.constraints import RoleLogits, phrase_token_seqs
from rolecraft.backends.kv_cache import SnapshotCache, capture, restore
from rolecraft.backends.models import resolve_gguf
from rolecraft.backends.registry import register
from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.messages import Message

if TYPE_CHECKING:
    from rolecraft.settings import Settings

FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise missing_extra("llama-cpp-python", "llama") from exc
    return llama_cpp


def _vision_handler(settings: Settings) -> Any:
    """llama.cpp's multimodal chat handler for `settings.mmproj`, or None for a text-only model."""
    if not settings.mmproj:
        return None
    from llama_cpp.llama_chat_format import MTMDChatHandler

    path = resolve_gguf(settings.mmproj, cache_dir=settings.home / "hub")
    return MTMDChatHandler(clip_model_path=str(path), verbose=False)


@register("llama_cpp")
class LlamaCppBackend(Backend):
    """A GGUF model run in-process by llama.cpp."""

    name = "llama_cpp"

    def __init__(self, settings: Settings) -> None:
        llama_cpp = _import_llama()
        self.model_path = resolve_gguf(settings.model, cache_dir=settings.home / "hub")
        handler = _vision_handler(settings)
        self.capabilities = Capabilities(images=handler is not None, logit_bias=True, exact_tokenizer=True)
        threads = settings.n_threads or max(1, os.cpu_count() or 1)
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(self.model_path), n_ctx=settings.n_ctx, n_threads=threads, chat_handler=handler,
                n_threads_batch=threads, verbose=False, seed=settings.seed if settings.seed is not None else -1,
            )
            if handler is not None:
                handler._init_mtmd_context(self.llm)  # load the projector now, not at the first picture
        except (ValueError, RuntimeError) as exc:
            raise RolecraftError(f"cannot load model {self.model_path} (mmproj {settings.mmproj}): {exc}",
                                 code="model_load_failed", status=500, type="server_error") from exc
        self._llama_cpp = llama_cpp
        self._last_prompt: tuple[tuple, list[int]] = ((), [])
        self._holder: str | None = None
        self._grammars: dict[str, Any] = {}
        self.snapshots = SnapshotCache(settings.kv_cache_mb << 20, settings.kv_disk_mb << 20, settings.home / "kv")
        self._formatter = self._make_formatter()
        self._overhead = self._message_overhead()

    def _make_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template") or FALLBACK_TEMPLATE
        return Jinja2ChatFormatter(template=template, eos_token=self._token_text(self.llm.token_eos()),
                                   bos_token=self._token_text(self.llm.token_bos()), add_generation_prompt=True)

    def _token_text(self, token: int) -> str:
        return "" if token < 0 else self.llm._model.token_get_text(token)

    def _message_overhead(self) -> int:
        one = [Message("system", "x")]
        two = [*one, Message("user", "x")]
        return self.count_tokens(two) - self.count_tokens(one) - len(self.tokenize("x"))

    @property
    def context_size(self) -> int:
        return self.llm.n_ctx()

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain text (no special tokens added)."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def render(self, messages: Sequence[Message]) -> str:
        return self._formatter(messages=[m.as_dict() for m in messages]).prompt

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The exact token ids the model will read for `messages` (the last result is memoised:
        the builder's final count and the generation that follows ask for the same prompt)."""
        key = tuple((m.role, m.content) for m in messages)
        if self._last_prompt[0] != key:
            tokens = self.llm.tokenize(self.render(messages).encode("utf-8"), add_bos=True, special=True)
            self._last_prompt = (key, tokens)
        return list(self._last_prompt[1])

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.prompt_tokens(messages))

    def count_message(self, message: Message) -> int:
        return len(self.tokenize(message.content)) + self._overhead

    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        if self.capabilities.images and any(m.images for m in messages):
            yield from self._stream_with_images(messages, params)
            return
        tokens = self.prompt_tokens(messages)
        if len(tokens) >= self.context_size:
            raise RolecraftError(f"prompt of {len(tokens)} tokens does not fit the context of {self.context_size}",
                                 code="context_overflow", param="messages")
        max_tokens = min(params.max_tokens, self.context_size - len(tokens))
        self._switch(params.cache_key)
        processors = self._processors(params, len(tokens))
        chunks = self.llm.create_completion(
            prompt=tokens, max_tokens=max_tokens, temperature=params.temperature, top_p=params.top_p,
            top_k=params.top_k, repeat_penalty=params.repeat_penalty, stop=params.stop or None,
            seed=params.seed, stream=True, logits_processor=processors, grammar=self._grammar(params.json_schema),
        )
        text, finish = [], None
        for chunk in chunks:
            choice = chunk["choices"][0]
            if choice["text"]:
                text.append(choice["text"])
                yield StreamEvent(text=choice["text"])
            finish = choice.get("finish_reason") or finish
        completion = len(self.tokenize("".join(text))) if text else 0
        yield StreamEvent(finish_reason=finish or "stop", prompt_tokens=len(tokens), completion_tokens=completion)

    def _stream_with_images(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        """Pictures go through llama.cpp's multimodal chat handler (model + mmproj), which renders the prompt."""
        self._switch(None)
        try:
            chunks = self.llm.create_chat_completion(
                messages=[m.wire() for m in messages], max_tokens=params.max_tokens, temperature=params.temperature,
                top_p=params.top_p, top_k=params.top_k, repeat_penalty=params.repeat_penalty,
                stop=params.stop or None, seed=params.seed, stream=True,
                logits_processor=self._processors(params, 0),
            )
            finish, count = None, 0
            for chunk in chunks:
                choice = chunk["choices"][0]
                if text := choice["delta"].get("content"):
                    count += 1
                    yield StreamEvent(text=text)
                finish = choice.get("finish_reason") or finish
        except ValueError as exc:
            raise RolecraftError(f"the vision model could not read the picture: {exc}", code="invalid_image",
                                 param="images") from exc
        yield StreamEvent(finish_reason=finish or "stop", prompt_tokens=self.llm.n_tokens - count,
                          completion_tokens=count)

    def _grammar(self, schema: dict | None) -> Any:
        if schema is None:
            return None
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = self._llama_cpp.LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def forget(self, key: str) -> None:
        """Drop everything cached for conversation `key`: its next turn re-reads its whole prompt
        (whoever holds the context now is parked first, so only `key` loses its cache)."""
        self._switch(None)
        self.snapshots.take(key)
        self.llm.reset()

    def _switch(self, key: str | None) -> None:
        """Give the context to conversation `key`, parking the current one's KV cache."""
        if key == self._holder:
            return
        if self._holder is not None and self.llm.n_tokens > 0:
            self.snapshots.put(self._holder, capture(self.llm))
        self._holder = key
        snapshot = self.snapshots.take(key) if key is not None else None
        if snapshot is not None:
            restore(self.llm, snapshot)

    def _processors(self, params: SamplingParams, prompt_len: int) -> Any:
        if not params.banned_phrases and not (params.boost_phrases and params.boost_strength > 0):
            return None
        boost = phrase_token_seqs(params.boost_phrases, self.tokenize) if params.boost_strength > 0 else []
        banned = phrase_token_seqs(params.banned_phrases, self.tokenize)
        role = RoleLogits(boost, banned, params.boost_strength, prompt_len)
        return self._llama_cpp.LogitsProcessorList([role])

    def close(self) -> None:
        self.llm.close()
