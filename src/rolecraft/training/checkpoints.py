"""Checkpoints that are either whole or absent: written to a hidden folder, then renamed into place.

A checkpoint holds the LoRA adapter (PEFT format), the optimiser, scheduler and
random-number states, and the step it was taken at. A crash or a full disk
while writing leaves the previous checkpoints untouched; resuming picks the
newest complete one.
"""

from __future__ import annotations

import errno
import json
import random
import shutil
from pathlib import Path
from typing import Any

from rolecraft.errors import RolecraftError
from rolecraft.files import replace_folder

STATE_FILE = "trainer_state.pt"
META_FILE = "rolecraft.json"


def _folder(root: Path, step: int) -> Path:
    return root / "checkpoints" / f"step-{step:07d}"


def write_atomic(final: Path, fill: Any) -> Path:
    """Create checkpoint folder `final` with `fill(tmp_folder)`, whole or not at all (files.replace_folder)."""
    try:
        return replace_folder(final, fill)
    except Exception as exc:  # torch and safetensors report a full disk as RuntimeError or their own types
        raise RolecraftError(f"cannot write {final}: {_reason(exc)}; earlier checkpoints are kept",
                             code="write_failed", param="out") from exc


def _reason(exc: Exception) -> str:
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left" in str(exc):
        return "the disk is full"
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def clear(root: Path) -> None:
    """Forget an earlier run in `root` (its checkpoints and metrics) before starting afresh."""
    shutil.rmtree(root / "checkpoints", ignore_errors=True)
    (root / "metrics.jsonl").unlink(missing_ok=True)


def save(root: Path, step: int, model: Any, trainer_state: dict[str, Any], meta: dict[str, Any], keep: int) -> Path:
    """Write checkpoint `step` under `root`/checkpoints and prune the oldest beyond `keep`."""
    import torch

    def fill(folder: Path) -> None:
        model.save_pretrained(str(folder))
        rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
        torch.save({**trainer_state, "step": step, "rng": rng}, folder / STATE_FILE)
        (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    path = write_atomic(_folder(root, step), fill)
    for old in complete(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def complete(root: Path) -> list[Path]:
    """Finished checkpoints under `root`, oldest first."""
    folder = root / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / STATE_FILE).is_file() and (p / META_FILE).is_file())


def load_state(path: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint; restores the random-number generators as a side effect."""
    import torch

    try:
        state = torch.load(path / STATE_FILE, weights_only=False)
        random.setstate(state["rng"]["python"])
        torch.set_rng_state(state["rng"]["torch"])
        missing = {"optimizer", "scheduler", "step"} - state.keys()
        if missing:
            raise KeyError(f"no {', '.join(sorted(missing))}")
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise RolecraftError(f"checkpoint {path} is unreadable ({exc!r}); delete it or use --no-resume",
                             code="invalid_checkpoint", param="out") from exc
    return state


def read_meta(path: Path) -> dict[str, Any]:
    """What a checkpoint or adapter folder records about its run (base model, recipe)."""
    try:
        return json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RolecraftError(f"{path / META_FILE} is unreadable: {exc}", code="invalid_checkpoint",
                             param="adapter") from exc
