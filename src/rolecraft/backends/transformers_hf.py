"""Hugging Face transformers backend: chat through the model the trainer fine-tunes.

Training produces PEFT LoRA adapters for a transformers model; this backend
serves the same weights and switches adapters per request (each character can
speak through its own fine-tune) without reloading the base. It renders with
the shared `ChatTemplate` and the model's own tokenizer, like the llama_cpp
backend and the trainer, so chat, token budgets and training read the same ids.

Tokens are generated one at a time with a KV cache that lives for one call and
sampled the way llama-cpp-python samples (role constraints, repetition penalty
over the last 64 generated tokens, top-k, top-p, min-p, temperature). Nothing
is cached across calls, so `forget` has nothing to drop.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rolecraft.backends.base import Capabilities, SamplingParams, StreamEvent
from rolecraft.backends.constraints import RoleLogits, phrase_token_seqs
from rolecraft.backends.models import HUB_PREFIX, hub_offline, is_named_model, resolve_gguf
from rolecraft.backends.penalties import breaker_test, sampler_processors
from rolecraft.backends.registry import register
from rolecraft.backends.templated import TemplatedBackend
from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.messages import Message
from rolecraft.prompting.template import ChatTemplate

if TYPE_CHECKING:
    from rolecraft.settings import Settings

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
_MODEL_HELP = ("use a Hugging Face model folder (with config.json), a hub id OWNER/NAME, or a GGUF model "
               "('smollm2', a .gguf path, hf:OWNER/REPO/FILE.gguf)")
# llama-cpp-python's defaults, so both backends sample alike.
PENALTY_LAST_N = 64
# End-of-turn tokens of common chat formats, honoured besides the model's EOS (llama.cpp does the same).
_END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>")


def _imports() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise missing_extra("transformers", "transformers") from exc
    return torch, transformers


def pick_device(torch: Any, spec: str) -> Any:
    """The torch device for `settings.device` ("auto": CUDA when there is one, else the CPU)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise RolecraftError(f"unknown torch device {spec!r}: {exc}", code="invalid_device", param="device") from exc
    usable = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}.get(device.type, lambda: True)
    if not usable():
        raise RolecraftError(f"device {spec!r} is not available on this machine; use 'auto' or 'cpu'",
                             code="invalid_device", param="device")
    return device


def pick_dtype(torch: Any, device: Any) -> Any:
    """float32 on the CPU; bfloat16 (or float16 where it is missing) on accelerators."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if device.type == "mps" else torch.float32


def model_source(settings: Settings) -> tuple[str, dict[str, Any]]:
    """What `from_pretrained` loads for `settings.model`: a folder or hub id, and extra keyword arguments."""
    spec = settings.model.strip()
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise RolecraftError(f"{path} is not a Hugging Face model folder (no config.json); {_MODEL_HELP}",
                                 code="invalid_model", param="model")
        return str(path), {}
    if is_named_model(spec) or spec.startswith(HUB_PREFIX) or path.suffix == ".gguf" or path.is_file():
        gguf = resolve_gguf(spec, cache_dir=settings.home / "hub", offline=settings.offline)
        return str(gguf.parent), {"gguf_file": gguf.name}
    if _HUB_ID.fullmatch(spec):
        return spec, {}
    raise RolecraftError(f"model not found: {spec!r}; {_MODEL_HELP}", code="model_not_found", param="model")


def load_pretrained(settings: Settings, device: Any, dtype: Any) -> tuple[Any, Any]:
    """The model and tokenizer for `settings.model`; a hub id is looked up in the local cache first
    and downloaded only when it is missing there (and HF_HUB_OFFLINE is not set)."""
    _, transformers = _imports()
    source, extra = model_source(settings)
    local = "gguf_file" in extra or Path(source).is_dir()

    def load(local_only: bool) -> tuple[Any, Any]:
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=local_only, **extra)
            model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=dtype,
                                                                      local_files_only=local_only, **extra)
            return model.to(device).eval(), tokenizer
        except OSError as exc:
            if not local:
                raise  # a hub id missing from the cache: explained below
            raise _load_failed(settings.model, exc) from exc
        except (ValueError, KeyError, RuntimeError) as exc:
            raise _load_failed(settings.model, exc) from exc

    try:
        return load(local_only=True)
    except OSError as exc:
        if hub_offline(None):
            raise _unavailable(settings.model, "offline mode is on (HF_HUB_OFFLINE)", exc) from exc
    try:
        return load(local_only=False)
    except OSError as exc:
        raise _unavailable(settings.model, "the Hugging Face Hub cannot be reached or has no such model", exc) from exc


def _load_failed(spec: str, exc: Exception) -> RolecraftError:
    return RolecraftError(f"transformers cannot load model {spec!r}: {exc}", code="model_load_failed",
                          param="model", status=500, type="server_error")


def _unavailable(spec: str, why: str, exc: Exception) -> RolecraftError:
    return RolecraftError(f"cannot load model {spec!r}: it is not in the local Hugging Face cache and {why} "
                          f"({exc}); {_MODEL_HELP}", code="model_unavailable", param="model", status=503,
                          type="server_error")


def _max_positions(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _end_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end a reply: the model's EOS ids and known end-of-turn tokens of its vocabulary."""
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        ids.update(value if isinstance(value, list) else [value] if value is not None else [])
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in _END_OF_TURN if token in vocab)
    return ids


class RoleLogitsProcessor:
    """`RoleLogits` as a transformers logits processor (usable in `generate(logits_processor=[...])`):
    each batch row goes through the numpy implementation the llama_cpp backend uses."""

    def __init__(self, role: RoleLogits) -> None:
        self.role = role

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        rows = np.array(scores.detach().float().cpu().numpy(), copy=True)
        ids = input_ids.detach().cpu().numpy()
        for index in range(rows.shape[0]):
            rows[index] = self.role(ids[index], rows[index])
        return torch.from_numpy(rows).to(device=scores.device, dtype=scores.dtype)


class _Chain:
    """Numpy processors run one after another, shaped like `RoleLogits` for `RoleLogitsProcessor`."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        for step in self.steps:
            scores = step(input_ids, scores)
        return scores


class _Sampler:
    """Picks the next token: role constraints, repetition penalty, our numpy samplers (logit_bias,
    frequency/presence, DRY, tail-free, XTC), then greedy (temperature 0) or top-k, typical, top-p,
    min-p and temperature before a draw from `generator` (on the CPU, so a seed gives the same
    reply on every device). Mirostat has no transformers counterpart and is ignored."""

    def __init__(self, params: SamplingParams, prompt_len: int, role: RoleLogitsProcessor | None,
                 generator: Any, extras: list[Any] | None = None) -> None:
        from transformers import (
            MinPLogitsWarper,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
            TypicalLogitsWarper,
        )

        self.prompt_len, self.role, self.generator = prompt_len, role, generator
        self.extras = RoleLogitsProcessor(_Chain(extras)) if extras else None
        penalize = params.repeat_penalty > 0 and params.repeat_penalty != 1.0
        self.penalty = RepetitionPenaltyLogitsProcessor(params.repeat_penalty) if penalize else None
        self.warpers: list[Any] = []
        if params.temperature > 0:
            self.warpers = [TopKLogitsWarper(params.top_k)] if params.top_k > 0 else []
            self.warpers += [TypicalLogitsWarper(params.typical_p)] if 0 < params.typical_p < 1.0 else []
            self.warpers += [TopPLogitsWarper(params.top_p)] if params.top_p < 1.0 else []
            self.warpers += [MinPLogitsWarper(params.min_p)] if params.min_p > 0 else []
            self.warpers += [TemperatureLogitsWarper(params.temperature)]

    def __call__(self, history: list[int], logits: Any) -> int:
        import torch

        scores = logits.float()
        ids = torch.tensor([history], device=scores.device)
        if self.role is not None:
            scores = self.role(ids, scores)
        recent = ids[:, max(self.prompt_len, len(history) - PENALTY_LAST_N):]
        if self.penalty is not None and recent.shape[1]:
            scores = self.penalty(recent, scores)
        if self.extras is not None:
            scores = self.extras(ids, scores)
        if not self.warpers:
            return int(scores.argmax(dim=-1)[0])
        for warper in self.warpers:
            scores = warper(ids, scores)
        probs = torch.softmax(scores, dim=-1).cpu()
        return int(torch.multinomial(probs, 1, generator=self.generator)[0, 0])


class _Detokenizer:
    """Turns tokens into text as they come, holding back bytes of a character not yet complete."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = self.read = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token: int) -> str:
        self.ids.append(token)
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""
        self.prefix, self.read = self.read, len(self.ids)
        return after[len(before):]

    def flush(self) -> str:
        before = self._decode(self.ids[self.prefix:self.read])
        return self._decode(self.ids[self.prefix:])[len(before):].rstrip("\ufffd")


class _StopText:
    """Cuts the reply at the first stop sequence, holding back text that may be the start of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def push(self, text: str) -> tuple[str, bool]:
        """Text safe to emit now, and whether a stop sequence was reached."""
        self.pending += text
        cuts = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if cuts:
            out, self.pending = self.pending[:min(cuts)], ""
            return out, True
        keep = max((k for s in self.stops for k in range(min(len(s) - 1, len(self.pending)), 0, -1)
                    if self.pending.endswith(s[:k])), default=0)
        out, self.pending = self.pending[:len(self.pending) - keep], self.pending[len(self.pending) - keep:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def _invalid_adapter(path: Path | str, reason: str) -> RolecraftError:
    return RolecraftError(f"cannot use LoRA adapter {path}: {reason}", code="invalid_adapter", param="adapter")


def _adapter_problem(path: Path) -> str | None:
    """Why `path` is not a local PEFT adapter folder (None when it looks like one)."""
    if not path.is_dir():
        return "no such folder"
    if not (path / "adapter_config.json").is_file():
        return "no adapter_config.json, so it is not a PEFT adapter folder"
    if not any((path / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin")):
        return "no adapter_model.safetensors"
    return None


class AdapterSet:
    """PEFT adapters loaded into one base model, each once, addressed by folder path.

    The base is wrapped in a `PeftModel` when the first adapter is asked for (LoRA
    layers are injected into the base model in place); a `PeftModel` handed in by
    the trainer is used as it is, and its adapters can be asked for by name.
    """

    def __init__(self, model: Any, folder: Path) -> None:
        self.peft = model if hasattr(model, "peft_config") and hasattr(model, "get_base_model") else None
        self.base = self.peft.get_base_model() if self.peft is not None else model
        self.owned = self.peft is None
        self.folder = folder
        self.names: dict[str, str] = {}

    def resolve(self, spec: str | None) -> str | None:
        """The adapter name for `spec` (None: the base alone), loading the adapter the first time."""
        if spec is None:
            return None
        if self.peft is not None and spec in self.peft.peft_config:
            return spec
        path = Path(spec).expanduser()
        if not path.is_absolute() and (self.folder / path).exists():
            path = self.folder / path
        key = str(path.resolve())
        if key not in self.names:
            name = "rc_" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
            self._load(path, name)
            self.names[key] = name
        return self.names[key]

    def _load(self, path: Path, name: str) -> None:
        try:
            from peft import PeftConfig, PeftModel
        except ImportError as exc:
            raise missing_extra("peft", "transformers") from exc
        if problem := _adapter_problem(path):
            raise _invalid_adapter(path, problem)
        try:
            config = PeftConfig.from_pretrained(str(path))
        except (ValueError, TypeError, KeyError, OSError) as exc:
            raise _invalid_adapter(path, f"unreadable adapter_config.json ({exc})") from exc
        if config.is_prompt_learning or getattr(config, "is_adaption_prompt", False):
            raise _invalid_adapter(path, f"{config.peft_type} adapters are not supported (LoRA-style ones are)")
        config.inference_mode = True
        training = self.base.training
        try:
            if self.peft is None:
                self.peft = PeftModel(self.base, config, adapter_name=name)
            result = self.peft.load_adapter(str(path), adapter_name=name, torch_device=str(self.base.device))
            stray = [*result.missing_keys, *result.unexpected_keys]
            if stray:
                raise ValueError(f"{len(stray)} adapter weights do not fit this model (e.g. {stray[0]})")
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            self._drop(name)
            raise _invalid_adapter(path, f"it does not fit this base model ({exc})") from exc
        finally:
            self.base.train(training)

    def _drop(self, name: str) -> None:
        """Remove a half-loaded adapter (and the PeftModel wrapper we made, when it held nothing else)."""
        if self.peft is None or name not in self.peft.peft_config:
            return
        if self.owned and len(self.peft.peft_config) == 1:
            self.base = self.peft.unload()
            self.peft = None
        else:
            self.peft.delete_adapter(name)

    @contextmanager
    def use(self, name: str | None) -> Iterator[None]:
        """Run the model with adapter `name` (None: all adapters off) in eval mode, for one forward pass."""
        if name is None:
            context: Any = self.peft.disable_adapter() if self.peft is not None else nullcontext()
        else:
            if self.peft.active_adapter != name:
                self.peft.set_adapter(name, inference_mode=True)
            context = nullcontext()
        training = self.base.training
        if training:
            self.base.eval()
        try:
            with context:
                yield
        finally:
            if training:
                self.base.train()


@register("transformers")
class TransformersBackend(TemplatedBackend):
    """A Hugging Face causal LM (folder, hub id, or dequantized GGUF) with per-request LoRA adapters."""

    name = "transformers"
    capabilities = Capabilities(images=False, logit_bias=True, exact_tokenizer=True)

    def __init__(self, settings: Settings) -> None:
        torch, _ = _imports()
        device = pick_device(torch, settings.device)
        model, tokenizer = load_pretrained(settings, device, pick_dtype(torch, device))
        self._setup(model, tokenizer, settings)

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, settings: Settings) -> TransformersBackend:
        """Wrap a model already in memory (e.g. the trainer's; a PeftModel's adapters are usable by name)."""
        _imports()
        backend = cls.__new__(cls)
        backend._setup(model, tokenizer, settings)
        return backend

    def _setup(self, model: Any, tokenizer: Any, settings: Settings) -> None:
        import torch

        self._torch = torch
        self._lock = threading.Lock()  # adapter switches and forward passes of concurrent streams take turns
        self.adapters = AdapterSet(model, settings.home / "adapters")
        self.tokenizer = tokenizer
        self._breakers = breaker_test(lambda token: tokenizer.decode([token]).encode("utf-8"))
        self.n_ctx = min(settings.n_ctx, _max_positions(self.model.config) or settings.n_ctx)
        self.end_ids = _end_ids(self.model, tokenizer)
        self._rng = torch.Generator()
        if settings.seed is None:
            self._rng.seed()
        else:
            self._rng.manual_seed(settings.seed)
        source = tokenizer.chat_template if isinstance(getattr(tokenizer, "chat_template", None), str) else None
        self.use_template(ChatTemplate(source, self._encode, bos=tokenizer.bos_token or "",
                                       eos=tokenizer.eos_token or ""))

    @property
    def model(self) -> Any:
        """The transformers model (with any LoRA layers injected into it)."""
        return self.adapters.base

    @property
    def device(self) -> Any:
        return self.model.device

    @property
    def context_size(self) -> int:
        return self.n_ctx

    def _encode(self, text: str) -> list[int]:
        """Ids of rendered prompt text: special tokens written in it are parsed; templates write BOS themselves."""
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain text (no special tokens added or parsed)."""
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True).input_ids)

    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        if params.json_schema is not None:
            raise RolecraftError("JSON-schema constrained output is not supported by the transformers backend; "
                                 "use llama_cpp or openai_compat for it", code="unsupported_parameter",
                                 param="json_schema")
        tokens = self.prompt_tokens(messages)
        if len(tokens) >= self.context_size:
            raise RolecraftError(f"prompt of {len(tokens)} tokens does not fit the context of {self.context_size}",
                                 code="context_overflow", param="messages")
        max_tokens = min(params.max_tokens, self.context_size - len(tokens))
        with self._lock:
            adapter = self.adapters.resolve(params.adapter)
        extras = sampler_processors(params, len(self.tokenizer), self.context_size, self._breakers,
                                    prompt_len=len(tokens), counts=True)
        sampler = _Sampler(params, len(tokens), self._role(params, len(tokens)), self._generator(params.seed), extras)
        yield from self._generate(tokens, max_tokens, sampler, adapter, params.stop)

    def _generate(self, prompt: list[int], max_tokens: int, sampler: _Sampler, adapter: str | None,
                  stop: Sequence[str]) -> Iterator[StreamEvent]:
        detok, stops = _Detokenizer(self.tokenizer), _StopText(stop)
        history, feed, past, finish, hit = list(prompt), list(prompt), None, "length", False
        while not hit and len(history) - len(prompt) < max_tokens:
            token, past = self._step(feed, past, history, sampler, adapter)
            if token in self.end_ids:
                finish = "stop"
                break
            history.append(token)
            feed = [token]
            text, hit = stops.push(detok.push(token))
            if text:
                yield StreamEvent(text=text)
        if not hit:  # held-back text that did not become a stop sequence is part of the reply
            text, hit = stops.push(detok.flush())
            if text := text + ("" if hit else stops.flush()):
                yield StreamEvent(text=text)
        yield StreamEvent(finish_reason="stop" if hit else finish, prompt_tokens=len(prompt),
                          completion_tokens=len(history) - len(prompt))

    def _step(self, feed: list[int], past: Any, history: list[int], sampler: _Sampler,
              adapter: str | None) -> tuple[int, Any]:
        """One forward pass over `feed` (the prompt, then one token at a time) and the token it picks."""
        torch = self._torch
        with self._lock, torch.inference_mode(), self.adapters.use(adapter):
            out = self.model(input_ids=torch.tensor([feed], device=self.device), past_key_values=past,
                             use_cache=True, logits_to_keep=1)
            return sampler(history, out.logits[:, -1, :]), out.past_key_values

    def _generator(self, seed: int | None) -> Any:
        if seed is None:
            return self._rng
        return self._torch.Generator().manual_seed(seed)

    def _role(self, params: SamplingParams, prompt_len: int) -> RoleLogitsProcessor | None:
        boosting = bool(params.boost_phrases) and params.boost_strength > 0
        if not params.banned_phrases and not boosting:
            return None
        boost = phrase_token_seqs(params.boost_phrases, self.tokenize) if boosting else []
        banned = phrase_token_seqs(params.banned_phrases, self.tokenize)
        return RoleLogitsProcessor(RoleLogits(boost, banned, params.boost_strength, prompt_len))

    def forget(self, key: str) -> None:
        """Nothing to drop: no KV cache outlives a call (each call reads its whole prompt)."""

    def close(self) -> None:
        """Drop this backend's references to the model and its adapters."""
        self.adapters.names.clear()
        self.adapters.peft = self.adapters.base = None
