"""The model a run trains and the backend whose chat template renders its data.

A GGUF base (the bundled SmolLM2 or any .gguf) is dequantized by transformers
into a trainable torch model, while its prompts are rendered and tokenized by
the llama.cpp backend that will later serve the adapter, so the ids trained on
are the ids chat feeds the model. A Hugging Face folder or hub id trains and
renders through the transformers backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolecraft.backends import create_backend
from rolecraft.backends.models import GGUF_MAGIC, HUB_PREFIX, resolve_gguf
from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.settings import Settings

IDENTITY_KEYS = ("architecture", "block_count", "embedding_length", "vocab_size")


@dataclass
class Base:
    """A loaded base model: the torch module to train, the rendering backend, and what identifies it."""

    spec: str
    model: Any
    backend: Any
    identity: dict[str, Any]
    gguf: Path | None = None
    dtype: Any = None

    def use_precision(self, precision: str) -> None:
        """Keep the frozen weights in bfloat16 when asked, or on 'auto' where the hardware does it fast."""
        import torch

        if precision == "bf16" or (precision == "auto" and _fast_bf16(torch)):
            self.dtype = torch.bfloat16
            self.model.to(torch.bfloat16)

    def to_accelerator(self) -> None:
        """Put the model on the GPU when there is one, so reference passes and evals run there too."""
        import torch

        if torch.cuda.is_available():
            self.model.to("cuda")

    def autocast(self) -> Any:
        """Mixed-precision context for forward passes (a no-op in float32)."""
        import contextlib

        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(next(self.model.parameters()).device.type, dtype=self.dtype)


def _fast_bf16(torch: Any) -> bool:
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


def import_torch() -> Any:
    try:
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise missing_extra("torch, transformers and peft", "train") from exc
    return torch


def _is_gguf(spec: str) -> bool:
    if spec.startswith(HUB_PREFIX) or spec.endswith(".gguf"):
        return True
    path = Path(spec).expanduser()
    if path.is_file():
        with path.open("rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    from rolecraft.backends.models import is_named_model

    return is_named_model(spec)


def gguf_identity(path: Path) -> dict[str, Any]:
    """Architecture and shape of a GGUF model, read from its header."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return field.contents() if field is not None else None

    arch = value("general.architecture")
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    return {"architecture": arch, "name": value("general.name") or path.stem,
            "block_count": value(f"{arch}.block_count"), "embedding_length": value(f"{arch}.embedding_length"),
            "head_count": value(f"{arch}.attention.head_count"),
            "head_count_kv": value(f"{arch}.attention.head_count_kv") or value(f"{arch}.attention.head_count"),
            "vocab_size": len(tokens.data) if tokens is not None else None}


def load_base(settings: Settings, spec: str, max_length: int) -> Base:
    """Load `spec` for training with prompts rendered like chat at a `max_length` context."""
    import_torch()
    if _is_gguf(spec):
        return _gguf_base(settings, spec, max_length)
    backend = create_backend(settings.model_copy(update={"backend": "transformers", "model": spec,
                                                         "n_ctx": max_length, "adapter": None}))
    config = backend.model.config
    identity = {"architecture": config.model_type, "name": getattr(config, "_name_or_path", spec),
                "block_count": config.num_hidden_layers, "embedding_length": config.hidden_size,
                "head_count": config.num_attention_heads,
                "head_count_kv": getattr(config, "num_key_value_heads", config.num_attention_heads),
                "vocab_size": config.vocab_size}
    return Base(spec, backend.model, backend, identity)


def _gguf_base(settings: Settings, spec: str, max_length: int) -> Base:
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor dequantization bars; the trainer reports its own progress

    path = resolve_gguf(spec, cache_dir=settings.home / "hub", offline=settings.offline)
    backend = create_backend(settings.model_copy(update={"backend": "llama_cpp", "model": str(path),
                                                         "n_ctx": max_length, "mmproj": None, "adapter": None}))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    except (ValueError, OSError, KeyError) as exc:
        backend.close()
        raise RolecraftError(f"transformers cannot load {path.name} for training: {exc}", code="model_load_failed",
                             param="base") from exc
    return Base(spec, model, backend, gguf_identity(path), gguf=path)
