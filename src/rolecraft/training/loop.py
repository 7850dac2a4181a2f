"""One LoRA training loop for every objective (SFT, DPO): schedule, checkpoints, resume, eval, progress.

The data order is a pure function of the seed and the step, so resuming from a
checkpoint continues exactly where the run stopped. Accelerate places the model
(CPU here; under `accelerate launch` one process per GPU, each taking its share
of every step's micro-batches, with only the main process writing files).
"""

from __future__ import annotations

import functools
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolecraft.errors import RolecraftError
from rolecraft.training import checkpoints
from rolecraft.training.base import IDENTITY_KEYS, Base
from rolecraft.training.config import TrainConfig

Loss = Callable[[Any, list[Any]], tuple[Any, int, dict[str, float]]]


@dataclass
class Objective:
    """What to minimise: `loss(model, items)` → (loss tensor, tokens it averages over, extra metrics);
    `size(item)` is the tokens one item puts through the model (for throughput)."""

    name: str
    train: list[Any]
    evals: list[Any]
    loss: Loss
    size: Callable[[Any], int]


@dataclass
class RunResult:
    """What a finished run reports."""

    out: Path
    adapter: Path
    steps: int
    resumed_from: int
    wall_s: float
    tokens: int
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s else 0.0


# Recipe fields that fix the data order, the schedule and the adapter's shape: a resumed run must share them.
# (epochs and max_steps may grow: a run can be extended, with the rest of the schedule stretched to match.)
RESUME_FIELDS = ("batch_size", "grad_accum", "seed", "lora_r", "lora_alpha", "target_modules", "learning_rate",
                 "warmup_steps")


def plan_steps(cfg: TrainConfig, n_items: int, processes: int = 1) -> int:
    per_epoch = math.ceil(n_items / (cfg.batch_size * cfg.grad_accum * processes))
    return cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))


@functools.lru_cache(maxsize=4)
def _order(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(n))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return tuple(order)


def micro_batch(items: list[Any], cfg: TrainConfig, index: int) -> list[Any]:
    """Micro-batch number `index` of the endless seeded stream: a fresh shuffle every epoch."""
    n = len(items)
    return [items[_order(n, cfg.seed, position // n)[position % n]]
            for position in range(index * cfg.batch_size, (index + 1) * cfg.batch_size)]


def _peft_model(base: Base, cfg: TrainConfig, resume: Path | None) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    if isinstance(base.model, PeftModel):  # started from --init-adapter
        if resume is not None:
            set_peft_model_state_dict(base.model, load_file(str(resume / "adapter_model.safetensors")))
        return base.model
    if resume is not None:
        return PeftModel.from_pretrained(base.model, str(resume), is_trainable=True)
    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=cfg.target_modules, task_type="CAUSAL_LM", bias="none")
    try:
        return get_peft_model(base.model, config)
    except ValueError as exc:
        raise RolecraftError(f"cannot put LoRA on {cfg.target_modules}: {exc}", code="invalid_option",
                             param="target_modules") from exc


def _schedule(cfg: TrainConfig, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / (cfg.warmup_steps + 1)
        return max(0.0, (total - step) / max(1, total - cfg.warmup_steps))

    return factor


def evaluate(model: Any, objective: Objective, cfg: TrainConfig, base: Base) -> float | None:
    """Mean loss over the held-out items (token-weighted), or None without any."""
    import torch

    if not objective.evals:
        return None
    model.eval()
    total, weight = 0.0, 0
    with torch.no_grad(), base.autocast():
        for start in range(0, len(objective.evals), cfg.batch_size):
            loss, tokens, _ = objective.loss(model, objective.evals[start:start + cfg.batch_size])
            total += float(loss) * tokens
            weight += tokens
    model.train()
    return total / max(1, weight)


def _meta(base: Base, cfg: TrainConfig, objective: Objective) -> dict[str, Any]:
    return {"objective": objective.name, "base": base.spec, "base_identity": base.identity,
            "config": cfg.model_dump(mode="json"), "train_items": len(objective.train),
            "eval_items": len(objective.evals)}


def _setup(base: Base, cfg: TrainConfig, objective: Objective, processes: int,
           log: Callable[[str], None]) -> tuple[Any, ...]:
    """The LoRA model, optimiser and schedule, restored from the newest checkpoint when resuming."""
    import torch

    if not cfg.resume:
        checkpoints.clear(cfg.out)
    latest = next(reversed(checkpoints.complete(cfg.out)), None)
    if latest is not None:
        _check_resume(latest, base, cfg, objective)
    model = _peft_model(base, cfg, latest)
    model.train()
    total = plan_steps(cfg, len(objective.train), processes)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg, total))
    start = 0
    if latest is not None:
        state = checkpoints.load_state(latest)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["step"]
        _truncate_metrics(cfg.out, start)
        log(f"resuming from {latest.name} (step {start} of {total})")
    return model, optimizer, scheduler, start, total


def run(base: Base, cfg: TrainConfig, objective: Objective, *, progress: bool = True,
        log: Callable[[str], None] = print) -> RunResult:
    """Train a LoRA adapter on `base` for `objective`; write checkpoints and the final adapter under cfg.out."""
    import torch
    from accelerate import Accelerator

    if not objective.train:
        raise RolecraftError("no training items left after rendering", code="invalid_dataset", param="data")
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model, optimizer, scheduler, start, total = _setup(base, cfg, objective, accelerator.num_processes, log)
    model, optimizer = accelerator.prepare(model, optimizer)
    main = accelerator.is_main_process
    meta = _meta(base, cfg, objective)
    result = RunResult(cfg.out, cfg.out / "adapter", total, start, 0.0, 0)
    began = time.perf_counter()
    for step, row in _steps(model, optimizer, scheduler, accelerator, cfg, objective, base, (start, total), progress):
        result.tokens += int(row.pop("tokens"))
        if (step % (cfg.eval_every or _epoch_steps(cfg, objective)) == 0 or step == total) and objective.evals:
            row["eval_loss"] = evaluate(model, objective, cfg, base)
        result.history.append(row)
        if main:
            _append_metrics(cfg.out, row)
        if (step % cfg.save_every == 0 or step == total) and main:
            state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            checkpoints.save(cfg.out, step, accelerator.unwrap_model(model), state, meta, cfg.keep_checkpoints)
    result.wall_s = time.perf_counter() - began
    final = accelerator.unwrap_model(model)
    if main:
        checkpoints.write_atomic(result.adapter, lambda folder: _save_adapter(final, folder, meta))
    base.model = final
    return result


def _epoch_steps(cfg: TrainConfig, objective: Objective) -> int:
    return plan_steps(cfg.model_copy(update={"epochs": 1.0, "max_steps": None}), len(objective.train))


def _save_adapter(model: Any, folder: Path, meta: dict[str, Any]) -> None:
    model.save_pretrained(str(folder))
    (folder / checkpoints.META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _check_resume(latest: Path, base: Base, cfg: TrainConfig, objective: Objective) -> None:
    """Refuse to continue a checkpoint of another objective, base model or recipe."""
    meta = checkpoints.read_meta(latest)
    theirs, ours = meta.get("base_identity") or {}, base.identity
    recipe = meta.get("config") or {}
    now = cfg.model_dump(mode="json")
    differs = [f"base {k}" for k in IDENTITY_KEYS if theirs.get(k) != ours.get(k)]
    differs += [k for k in RESUME_FIELDS if recipe.get(k) != now[k]]
    if meta.get("objective") != objective.name:
        differs.insert(0, f"objective {meta.get('objective')}")
    if differs:
        raise RolecraftError(f"the checkpoint {latest} is from another run (different {', '.join(differs)}); "
                             "use a new --out, the same options, or --no-resume", code="invalid_checkpoint",
                             param="out")


def _steps(model: Any, optimizer: Any, scheduler: Any, accelerator: Any, cfg: TrainConfig, objective: Objective,
           base: Base, span: tuple[int, int], progress: bool) -> Iterator[tuple[int, dict[str, float]]]:
    from tqdm import tqdm

    start, total = span
    bar = tqdm(total=total, initial=start, desc=f"train {objective.name}", disable=not progress, unit="step")
    for step in range(start + 1, total + 1):
        began, losses, tokens, extra = time.perf_counter(), [], 0, {}
        world, rank = accelerator.num_processes, accelerator.process_index
        for micro in range((step - 1) * cfg.grad_accum, step * cfg.grad_accum):
            batch = micro_batch(objective.train, cfg, micro * world + rank)
            with base.autocast():
                loss, _, extra = objective.loss(model, batch)
            accelerator.backward(loss / cfg.grad_accum)
            losses.append(float(loss.detach()))
            tokens += sum(map(objective.size, batch))
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        seconds = time.perf_counter() - began
        row = {"step": step, "loss": sum(losses) / len(losses), "lr": lr,
               "tokens_per_s": tokens / seconds, "tokens": tokens, **extra}
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.3f}")
        yield step, row
    bar.close()


def _truncate_metrics(out: Path, step: int) -> None:
    """Drop metric rows of steps after the checkpoint being resumed (they will be run again)."""
    path = out / "metrics.jsonl"
    if path.is_file():
        rows = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        path.write_text("".join(f"{line}\n" for line in rows), encoding="utf-8")


def _append_metrics(out: Path, row: dict[str, float]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "metrics.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
