"""Embedded llama.cpp backend (llama-cpp-python): the offline default.

We render the model's own chat template and tokenize the prompt ourselves, so
the prompt shown by --show-prompt, the token budget and what the model reads
are the same thing. llama-cpp-python keeps the KV cache of the previous call
and re-evaluates only the tokens after the longest common prefix; the context
builder keeps that prefix stable. With `batch_streams` > 1, concurrent text streams are decoded
together in a second context (backends/batching.py); LoRA adapters and pictures stay on this one.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolecraft.backends.anticopy import AntiCopy
from rolecraft.backends.base import Capabilities, SamplingParams, StreamEvent
from rolecraft.backends.batching import BatchScheduler, MakeSampler, Stable
from rolecraft.backends.constraints import RoleLogits, phrase_token_seqs
from rolecraft.backends.decoding import Decoded, decode, token_logprobs
from rolecraft.backends.kv_cache import SnapshotCache, capture, restore
from rolecraft.backends.models import resolve_gguf
from rolecraft.backends.penalties import LogprobRecorder, breaker_test, sampler_processors
from rolecraft.backends.prefix_cache import MIN_TOKENS, PrefixCache, model_identity, scope_of, stable_count
from rolecraft.backends.registry import register
from rolecraft.backends.sharing import waiting
from rolecraft.backends.templated import TemplatedBackend
from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.messages import Message
from rolecraft.prompting.template import ChatTemplate

if TYPE_CHECKING:
    from rolecraft.settings import Settings

def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise missing_extra("llama-cpp-python", "llama") from exc
    return llama_cpp


def _sampler_kwargs(params: SamplingParams) -> dict[str, Any]:
    """The samplers llama.cpp's own chain runs (DRY, XTC, tail-free and logit_bias are our processors)."""
    return {"top_k": params.top_k, "top_p": params.top_p, "min_p": params.min_p, "typical_p": params.typical_p,
            "temp": params.temperature, "repeat_penalty": params.repeat_penalty,
            "frequency_penalty": params.frequency_penalty, "presence_penalty": params.presence_penalty,
            "mirostat_mode": params.mirostat_mode, "mirostat_tau": params.mirostat_tau,
            "mirostat_eta": params.mirostat_eta}


def default_threads() -> int:
    """All usable cores but one. llama.cpp's threads wait for each other at every step, so one that
    shares its core with another busy process stalls them all: with 2 threads on 2 cores and one core
    busy, a reply was 20× slower, with 1 thread 1.7× (benchmarks/busy_cpu.py)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores - 1)


def _vision_handler(settings: Settings) -> Any:
    """llama.cpp's multimodal chat handler for `settings.mmproj`, or None for a text-only model."""
    if not settings.mmproj:
        return None
    from llama_cpp.llama_chat_format import MTMDChatHandler

    path = resolve_gguf(settings.mmproj, cache_dir=settings.home / "hub", offline=settings.offline)
    return MTMDChatHandler(clip_model_path=str(path), verbose=False)


@register("llama_cpp")
class LlamaCppBackend(TemplatedBackend):
    """A GGUF model run in-process by llama.cpp."""

    name = "llama_cpp"

    def __init__(self, settings: Settings) -> None:
        llama_cpp = _import_llama()
        self.model_path = resolve_gguf(settings.model, cache_dir=settings.home / "hub", offline=settings.offline)
        handler = _vision_handler(settings)
        self.capabilities = Capabilities(images=handler is not None, logit_bias=True, exact_tokenizer=True,
                                         logprobs=True, grammar=True)
        threads = settings.n_threads or default_threads()
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
        self._holder: tuple[str | None, str | None] = (None, None)
        self.adapters = LoraAdapters(llama_cpp, self.llm)
        self._parked_under: dict[str, str | None] = {}
        self._grammars: dict[str, Any] = {}
        self._breakers = breaker_test(self._piece)
        self.snapshots = SnapshotCache(settings.kv_cache_mb << 20, settings.kv_disk_mb << 20, settings.home / "kv")
        self.prefixes = PrefixCache(settings.home / "kv-prefix", settings.kv_prefix_mb << 20)
        self._identity = (model_identity(self.model_path), settings.n_ctx)
        self._stable: dict[tuple, list[int]] = {}
        self.batcher = self._make_batcher(settings)
        self._preparing = threading.Lock()
        self._alone = threading.Lock()  # the model's own context, held for a whole generation
        self._alone_by: int | None = None  # the thread holding it
        self.use_template(self._make_template())

    def _make_batcher(self, settings: Settings) -> BatchScheduler | None:
        """The scheduler that decodes concurrent streams together (None: one at a time, the default)."""
        if settings.batch_streams <= 1:
            return None
        vocab = self.llm._model.vocab
        parked = SnapshotCache(settings.kv_cache_mb << 20, settings.kv_disk_mb << 20, settings.home / "kv-batch")
        return BatchScheduler(self.llm, settings.batch_streams, parked,
                              lambda t: bool(self._llama_cpp.llama_vocab_is_eog(vocab, t)), self.prefixes)

    def _make_template(self) -> ChatTemplate:
        def encode(text: str) -> list[int]:
            return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

        return ChatTemplate(self.llm.metadata.get("tokenizer.chat_template"), encode,
                            bos=self._token_text(self.llm.token_bos()), eos=self._token_text(self.llm.token_eos()))

    def _token_text(self, token: int) -> str:
        return "" if token < 0 else self.llm._model.token_get_text(token)

    @property
    def context_size(self) -> int:
        return self.llm.n_ctx()

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain text (no special tokens added)."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def detokenize(self, ids: Sequence[int]) -> str:
        vocab = self.llm.n_vocab()
        bad = next((i for i in ids if not 0 <= i < vocab), None)
        if bad is not None:
            raise RolecraftError(f"token id {bad} is outside this model's vocabulary (0..{vocab - 1})",
                                 code="invalid_value", param="tokens")
        return self.llm.detokenize(list(ids)).decode("utf-8", errors="replace")

    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        if self.capabilities.images and any(m.images for m in messages):
            with self._own_context():
                yield from self._stream_with_images(messages, params)
            return
        with self._preparing:  # the memoised prompt and the grammar cache are shared by concurrent streams
            tokens = self.prompt_tokens(messages)
            if len(tokens) >= self.context_size:
                raise RolecraftError(f"prompt of {len(tokens)} tokens does not fit the context of "
                                     f"{self.context_size}", code="context_overflow", param="messages")
            max_tokens = min(params.max_tokens, self.context_size - len(tokens))
            recorder = LogprobRecorder(params.logprobs, len(tokens)) if params.logprobs is not None else None
            processors = self._processors(params, len(tokens), recorder)
            together = self.batcher is not None and params.adapter is None  # a LoRA adapter: the model's context
            sampler = self._batch_sampler(params, processors) if together else None
            stable = self._shared_prefix(messages, tokens) if together else None
        with contextlib.ExitStack() as alone:
            if self.batcher is not None and sampler is not None:
                generated = self.batcher.generate(tokens, params.cache_key, sampler, max_tokens, stable)
            else:
                alone.enter_context(self._own_context())
                generated = self._generate_alone(messages, tokens, params, processors)
            yield from self._events(generated, params, tokens, max_tokens, recorder)

    def _events(self, generated: Iterator[int], params: SamplingParams, tokens: list[int], max_tokens: int,
                recorder: LogprobRecorder | None) -> Iterator[StreamEvent]:
        out = Decoded()
        vocab = self.llm._model.vocab
        yield from (StreamEvent(text=piece) for piece in decode(
            generated, self._piece, lambda t: self._llama_cpp.llama_vocab_is_eog(vocab, t),
            params.stop, max_tokens, out, recorder))
        logprobs = token_logprobs(out, self._piece) if recorder is not None else None
        yield StreamEvent(finish_reason=out.finish_reason, prompt_tokens=len(tokens),
                          completion_tokens=len(out.tokens), logprobs=logprobs)

    @contextlib.contextmanager
    def _own_context(self) -> Iterator[None]:
        """Hold the model's own context (one conversation at a time) for a whole generation; a job
        thread waiting for it lets the others run (backends/sharing.py)."""
        me = threading.get_ident()
        if self._alone_by == me:
            raise RolecraftError("two generations on the model's own context were interleaved on one thread; "
                                 "finish one first, or set batch_streams above 1", code="backend_busy", status=500,
                                 type="server_error")
        with waiting():
            self._alone.acquire()
        self._alone_by = me
        try:
            yield
        finally:
            self._alone_by = None
            self._alone.release()

    def _generate_alone(self, messages: Sequence[Message], tokens: list[int], params: SamplingParams,
                        processors: Any) -> Generator[int, None, None]:
        """Tokens from the model's own context, which holds one conversation at a time (parked on switch)."""
        self._switch(params.cache_key, self.adapters.version(params.adapter))
        self._start_from_prefix(messages, tokens)
        self.llm.set_seed(params.seed if params.seed is not None else random.randrange(2**32))
        return self.llm.generate(tokens, reset=True, logits_processor=processors, grammar=self._grammar(params),
                                 **_sampler_kwargs(params))

    def _batch_sampler(self, params: SamplingParams, processors: Any) -> MakeSampler:
        """Builds a batched stream's sampler chain as `Llama.generate` builds its own (same samplers, same
        order, same seed), with our processors reading that stream's tokens instead of the context's."""
        grammar = self._grammar(params)
        seed = params.seed if params.seed is not None else random.randrange(2**32)

        def make(view: Callable[[], Any]) -> Any:
            steps = [partial(_on_stream, view, p) for p in processors] if processors else None
            self.llm.set_seed(seed)
            return self.llm._init_sampler(logits_processor=steps, grammar=grammar, **_sampler_kwargs(params))

        return make

    def _stream_with_images(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        """Pictures go through llama.cpp's multimodal chat handler (model + mmproj), which renders the prompt."""
        self._switch(None, self.adapters.version(params.adapter))
        try:
            chunks = self.llm.create_chat_completion(
                messages=[m.wire() for m in messages], max_tokens=params.max_tokens, temperature=params.temperature,
                top_p=params.top_p, top_k=params.top_k, repeat_penalty=params.repeat_penalty, min_p=params.min_p,
                typical_p=params.typical_p, frequency_penalty=params.frequency_penalty,
                presence_penalty=params.presence_penalty, mirostat_mode=params.mirostat_mode,
                mirostat_tau=params.mirostat_tau, mirostat_eta=params.mirostat_eta,
                stop=params.stop or None, seed=params.seed, stream=True, grammar=self._grammar(params),
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

    def _grammar(self, params: SamplingParams) -> Any:
        """A compiled grammar for `params.grammar` (GBNF) or `params.json_schema`, cached by its text."""
        if params.grammar is None and params.json_schema is None:
            return None
        is_gbnf = params.grammar is not None
        key = params.grammar if is_gbnf else json.dumps(params.json_schema, sort_keys=True)
        if key not in self._grammars:
            grammar = self._llama_cpp.LlamaGrammar
            try:
                self._grammars[key] = (grammar.from_string(key, verbose=False) if is_gbnf
                                       else grammar.from_json_schema(key, verbose=False))
            except (ValueError, RuntimeError) as exc:
                raise RolecraftError(f"the grammar could not be compiled: {exc}", code="invalid_value",
                                     param="grammar" if is_gbnf else "response_format") from exc
        return self._grammars[key]

    def _piece(self, token: int) -> bytes:
        return self.llm._model.detokenize([token])

    def forget(self, key: str) -> None:
        """Drop everything cached for conversation `key`: its next turn re-reads its whole prompt
        (whoever holds the context now is parked first, so only `key` loses its cache)."""
        with self._own_context():
            self._switch(None, self.adapters.active)
            self.snapshots.take(key)
            self.llm.reset()
        if self.batcher is not None:
            self.batcher.forget(key)

    def _switch(self, key: str | None, adapter: str | None) -> None:
        """Give the context to conversation `key` generating through `adapter`, parking the current
        holder's KV cache. A KV cache is only reused under the adapter it was computed with."""
        if (key, adapter) == self._holder:
            return
        held, held_adapter = self._holder
        if held is not None and self.llm.n_tokens > 0:
            self._parked_under[held] = held_adapter
            self.snapshots.put(held, capture(self.llm))
        if self.adapters.use(adapter):
            self.llm.reset()
        self._holder = (key, adapter)
        parked = self.snapshots.take(key) if key is not None else None
        if parked is not None and self._parked_under.pop(key, None) == adapter:
            restore(self.llm, parked)

    def _start_from_prefix(self, messages: Sequence[Message], tokens: list[int]) -> None:
        """When the context holds less of `tokens` than a saved prefix, restore that prefix. Otherwise, if
        it holds less than the character's stable prefix, evaluate that first and save it for new sessions."""
        if self.prefixes.budget <= 0:
            return
        held = self.llm.longest_token_prefix(self.llm._input_ids, tokens)
        stable = self._stable_prefix(messages, tokens, self.adapters.active)
        snapshot = self.prefixes.longest(stable.scope, tokens, longer_than=held)
        if snapshot is not None and restore(self.llm, snapshot):
            return
        held = self.llm.longest_token_prefix(self.llm._input_ids, tokens)
        if stable.end - held < MIN_TOKENS:
            return
        self.llm.n_tokens = held
        self.llm.eval(tokens[held:stable.end])
        self.prefixes.put(stable.scope, capture(self.llm))

    def _stable_prefix(self, messages: Sequence[Message], tokens: list[int], adapter: str | None) -> Stable:
        """The part of `tokens` every new session of this character shares, and its prefix cache scope (the
        batched path asks without an adapter, as the one-at-a-time path does then: both share entries)."""
        end = min(len(tokens) - 1, self.llm.longest_token_prefix(self._stable_ids(messages), tokens))
        return Stable(scope_of(*self._identity, self.template.source, adapter), end)

    def _shared_prefix(self, messages: Sequence[Message], tokens: list[int]) -> Stable | None:
        """What a batched stream may take from (or save to) the prefix cache (None: too short, or off)."""
        if self.prefixes.budget <= 0:
            return None
        stable = self._stable_prefix(messages, tokens, None)
        return stable if stable.end >= MIN_TOKENS else None

    def _stable_ids(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the messages every new session of this character starts with (memoised per character)."""
        stable = tuple((m.role, m.content) for m in messages[:stable_count(messages)])
        if stable not in self._stable:
            if len(self._stable) >= 32:
                self._stable.clear()
            self._stable[stable] = self.template.ids(messages[:len(stable)], generation_prompt=False) if stable else []
        return self._stable[stable]

    def _processors(self, params: SamplingParams, prompt_len: int, recorder: LogprobRecorder | None = None) -> Any:
        """Our logits processors, in order: the log-probability recorder (it must see the model's own
        distribution), role constraints, anti-copy, then `sampler_processors` (logit_bias, DRY, tail-free,
        XTC). None when all are off."""
        steps: list[Any] = [recorder] if recorder is not None else []
        if params.banned_phrases or (params.boost_phrases and params.boost_strength > 0):
            boost = phrase_token_seqs(params.boost_phrases, self.tokenize) if params.boost_strength > 0 else []
            banned = phrase_token_seqs(params.banned_phrases, self.tokenize)
            steps.append(RoleLogits(boost, banned, params.boost_strength, prompt_len))
        if params.copy_source:
            steps.append(AntiCopy(self.tokenize(params.copy_source), params.copy_max_tokens, prompt_len))
        steps += sampler_processors(params, self.llm.n_vocab(), self.context_size, self._breakers,
                                    prompt_len=prompt_len)
        return self._llama_cpp.LogitsProcessorList(steps) if steps else None

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self.adapters.close()
        self.llm.close()


def _on_stream(view: Callable[[], Any], processor: Callable[[Any, Any], Any], _context_ids: Any, scores: Any) -> Any:
    """Run `processor` on a batched stream's own tokens (`view()`), not on those of the model's context."""
    return processor(view(), scores)


class LoraAdapters:
    """LoRA GGUF adapters loaded once each on the shared base model and switched per request.

    An adapter is known by its version, "path@mtime": retraining into the same file is
    picked up at the next request, and the replaced handle is freed once it is off the context."""

    def __init__(self, llama_cpp: Any, llm: Any) -> None:
        self._lib, self._llm = llama_cpp, llm
        self._loaded: dict[str, tuple[str, Any]] = {}  # path → (version, handle)
        self.active: str | None = None

    @staticmethod
    def version(path: str | None) -> str | None:
        """The version of the adapter file at `path` (None for no adapter)."""
        if path is None:
            return None
        try:
            return f"{path}@{os.stat(path).st_mtime_ns}"
        except OSError as exc:
            raise RolecraftError(f"LoRA adapter not found: {path}", code="invalid_adapter", param="adapter") from exc

    def use(self, version: str | None) -> bool:
        """Make adapter `version` (None: no adapter) the active one; True when that changed the weights."""
        if version == self.active:
            return False
        lib, ctx = self._lib, self._llm._ctx.ctx
        stale = None
        if version is None:
            lib.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            path = version.rsplit("@", 1)[0]
            known = self._loaded.get(path)
            stale = known if known is not None and known[0] != version else None
            handle = self._load(path, version)
            if lib.llama_set_adapters_lora(ctx, (lib.llama_adapter_lora_p_ctypes * 1)(handle), 1,
                                           (ctypes.c_float * 1)(1.0)) != 0:
                raise RolecraftError(f"llama.cpp could not apply the LoRA adapter {path}", code="invalid_adapter",
                                     param="adapter")
        if stale is not None:
            lib.llama_adapter_lora_free(stale[1])
        self.active = version
        return True

    def _load(self, path: str, version: str) -> Any:
        known = self._loaded.get(path)
        if known is not None and known[0] == version:
            return known[1]
        handle = self._lib.llama_adapter_lora_init(self._llm.model, path.encode("utf-8"))
        if not handle:
            raise RolecraftError(f"{path} is not a LoRA GGUF for this model (llama.cpp refused it: not a LoRA "
                                 "adapter, or tensor names or shapes of another base model)", code="invalid_adapter",
                                 param="adapter")
        try:
            self._check_base(Path(path), handle)
        except RolecraftError:
            self._lib.llama_adapter_lora_free(handle)
            raise
        self._loaded[path] = (version, handle)
        return handle

    def _meta(self, handle: Any, key: str) -> str | None:
        buf = ctypes.create_string_buffer(256)
        n = self._lib.llama_adapter_meta_val_str(handle, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def _check_base(self, file: Path, handle: Any) -> None:
        """Refuse an adapter whose recorded base (rolecraft.base.*) differs from the loaded model."""
        expected = {k: self._meta(handle, f"rolecraft.base.{k}")
                    for k in ("architecture", "block_count", "embedding_length", "name")}
        meta = self._llm.metadata
        arch = meta.get("general.architecture")
        actual = {"architecture": arch, "block_count": meta.get(f"{arch}.block_count"),
                  "embedding_length": meta.get(f"{arch}.embedding_length")}
        wrong = [f"{k} {expected[k]} (model has {v})" for k, v in actual.items()
                 if expected[k] is not None and v is not None and str(v) != expected[k]]
        if wrong:
            raise RolecraftError(f"{file.name} was trained for another base model ({expected.get('name', '?')}): "
                                 + ", ".join(wrong), code="invalid_adapter", param="adapter")

    def close(self) -> None:
        for _, handle in self._loaded.values():
            self._lib.llama_adapter_lora_free(handle)
        self._loaded.clear()

