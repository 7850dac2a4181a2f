"""The training recipe: one pydantic model behind `rolecraft train` flags, TOML recipes and the library API."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TrainConfig(BaseModel):
    """How to fine-tune: data, LoRA shape, optimiser, schedule, checkpoints."""

    model_config = ConfigDict(extra="forbid")

    data: Path = Field(description="Training JSONL (TrainingSample rows for sft, PreferencePair rows for dpo).")
    eval_data: Path | None = Field(None, description="Held-out JSONL of the same kind, for eval loss.")
    out: Path = Field(description="Output folder: checkpoints/, adapter/, adapter.gguf, metrics.jsonl.")
    base: str | None = Field(
        None, description="Base model: bundled id, .gguf path (dequantized by transformers) or a Hugging Face "
        "folder/hub id [default: the configured --model].")
    init_adapter: Path | None = Field(
        None, description="Start from this trained PEFT adapter folder (e.g. an SFT run's adapter/) instead of a "
        "fresh LoRA; for dpo it is also the reference model.")
    epochs: float = Field(1.0, gt=0, description="Passes over the training data.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimiser steps (overrides epochs).")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate (linear warm-up, then linear decay).")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    batch_size: int = Field(4, ge=1, description="Sequences per forward pass.")
    grad_accum: int = Field(1, ge=1, description="Forward passes per optimiser step.")
    max_length: int = Field(1024, ge=32, description="Longest sequence in tokens (also the prompt context).")
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: float = Field(16.0, gt=0, description="LoRA alpha (the update is scaled by alpha / rank).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(default_factory=lambda: list(LLAMA_TARGETS),
                                      description="Linear layers that get LoRA weights.")
    beta: float = Field(0.1, gt=0, description="DPO: strength of the preference (KL) term.")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="Frozen base weights and matmuls in bfloat16 (auto: where the CPU/GPU supports it; "
        "LoRA weights and the optimiser stay float32).")
    seed: int = Field(0, description="Seed for LoRA init, data order and dropout.")
    save_every: int = Field(50, ge=1, description="Write a checkpoint every N optimiser steps.")
    eval_every: int | None = Field(None, ge=1, description="Eval loss every N steps [default: once per epoch].")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept on disk (oldest deleted first).")
    resume: bool = Field(True, description="Continue from the newest checkpoint in --out if there is one.")
    gguf: bool = Field(True, description="Also export the adapter as a llama.cpp LoRA GGUF (GGUF bases only).")
