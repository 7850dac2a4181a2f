"""The library entry points behind `rolecraft train`: load, render, train, export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError
from rolecraft.settings import Settings
from rolecraft.store.db import Store
from rolecraft.training import loop
from rolecraft.training.base import Base, load_base
from rolecraft.training.config import TrainConfig
from rolecraft.training.data import image_observer, observe_pictures
from rolecraft.training.dpo import dpo_objective, with_reference
from rolecraft.training.export import lora_to_gguf
from rolecraft.training.render import Renderer
from rolecraft.training.samples import PreferencePair, TrainingSample, read_jsonl
from rolecraft.training.sft import sft_objective


@dataclass
class Trained:
    """A finished run and where its artefacts are."""

    run: loop.RunResult
    gguf: Path | None
    eval_before: float | None
    eval_after: float | None


def open_library(settings: Settings) -> Store:
    """The character library (bundled samples installed) without loading a model."""
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_url)
    store.install_samples()
    return store


def library(settings: Settings) -> Callable[[str], Character | None]:
    """Character lookup by library id, None for names that are not cards."""
    store = open_library(settings)
    return lambda char_id: store.get_character(char_id) if store.has_character(char_id) else None


def prepare(settings: Settings, cfg: TrainConfig) -> tuple[Base, Renderer]:
    base = load_base(settings, cfg.base or settings.model, cfg.max_length)
    base.use_precision(cfg.precision)
    base.to_accelerator()
    if cfg.init_adapter is not None:
        base.model = start_from(base.model, cfg.init_adapter)
    renderer = Renderer(base.backend, library(settings), settings, max_tokens=cfg.max_length)
    return base, renderer


def train_sft(settings: Settings, cfg: TrainConfig, *, progress: bool = True,
              log: Callable[[str], None] = print) -> Trained:
    """LoRA SFT on TrainingSample rows; returns the run with eval loss before and after."""
    base, renderer = prepare(settings, cfg)
    train = [renderer.encode(s) for s in _samples(settings, renderer, cfg.data)]
    evals = [renderer.encode(s) for s in _samples(settings, renderer, cfg.eval_data)] if cfg.eval_data else []
    objective = sft_objective(train, evals)
    return _finish(base, cfg, objective, progress, log)


def _samples(settings: Settings, renderer: Renderer, path: Path) -> list[TrainingSample]:
    """A training file's samples with text observations for their pictures (files relative to it)."""
    samples = read_jsonl(path, TrainingSample)
    if not any(t.images and not t.observation for s in samples for t in s.messages):
        return samples
    return observe_pictures(samples, path.parent, image_observer(settings),
                            lambda sample: renderer.character(sample).name)


def train_dpo(settings: Settings, cfg: TrainConfig, *, progress: bool = True,
              log: Callable[[str], None] = print) -> Trained:
    """LoRA DPO on PreferencePair rows, the base model (adapter off) as the reference."""
    base, renderer = prepare(settings, cfg)
    train = [renderer.encode_pair(p) for p in read_jsonl(cfg.data, PreferencePair)]
    evals = [renderer.encode_pair(p) for p in read_jsonl(cfg.eval_data, PreferencePair)] if cfg.eval_data else []
    with base.autocast():
        objective = dpo_objective(with_reference(base.model, train, cfg.batch_size),
                                  with_reference(base.model, evals, cfg.batch_size), cfg.beta)
    return _finish(base, cfg, objective, progress, log)


def start_from(model: Any, adapter: Path) -> Any:
    """The base with a trained adapter loaded for further training."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    except (ValueError, OSError, RuntimeError) as exc:
        raise RolecraftError(f"cannot start from adapter {adapter}: {exc}", code="invalid_adapter",
                             param="init_adapter") from exc


def _finish(base: Base, cfg: TrainConfig, objective: loop.Objective, progress: bool,
            log: Callable[[str], None]) -> Trained:
    before = loop.evaluate(base.model, objective, cfg, base)
    result = loop.run(base, cfg, objective, progress=progress, log=log)
    after = loop.evaluate(base.model, objective, cfg, base)
    gguf = None
    if cfg.gguf and base.gguf is not None:
        gguf = lora_to_gguf(result.adapter, cfg.out / "adapter.gguf", base.identity)
    base.backend.close()
    return Trained(result, gguf, before, after)


def export_merged(settings: Settings, adapter: Path, out: Path, base_spec: str | None = None) -> Path:
    """The adapter folded into its base, saved as a safetensors folder."""
    from rolecraft.training.checkpoints import META_FILE, read_meta
    from rolecraft.training.export import merge

    recorded = read_meta(adapter).get("base") if (adapter / META_FILE).is_file() else None
    spec = base_spec or recorded or settings.model
    base = load_base(settings, spec, 256)
    tokenizer = _tokenizer(base)
    base.backend.close()
    return merge(base.model, adapter, out, tokenizer)


def _tokenizer(base: Base) -> Any:
    if base.gguf is None:
        return getattr(base.backend, "tokenizer", None)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base.gguf.parent), gguf_file=base.gguf.name)
