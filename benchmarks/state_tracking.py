"""State-tracking accuracy: rules vs schema-constrained model extraction, per catalog model.

Run: .venv/bin/python benchmarks/state_tracking.py [--models smollm2,qwen2.5-0.5b,qwen2.5-1.5b] [--threads 1]
     [--limit N] [--json out.json]

Each labelled turn of src/rolecraft/evaluation/data/state_turns.jsonl is read by the
tracker from an empty state (`state_tracking` = rules, then = model on each catalog
model that is installed, greedy, JSON-schema grammar on llama.cpp), and scored per
field (evaluation/state_accuracy.py). Prints accuracy per field, overall, on the
labelled cells only, and whole turns exactly right, each with a 95% bootstrap
interval over turns, plus seconds per turn (under whatever load the machine has).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from rolecraft.backends import create_backend
from rolecraft.backends.catalog import ASSEMBLED, models_dir
from rolecraft.evaluation.state_accuracy import FIELDS, StateTurn, accuracy, load_turns, score, track_turn
from rolecraft.settings import Settings

COLUMNS = (*FIELDS, "overall", "labelled", "exact")


def measure(mode: str, model: str | None, turns: list[StateTurn], threads: int) -> dict:
    """Scores and timing of one tracker over the turns."""
    backend = None
    if model is not None:
        backend = create_backend(Settings(model=model, n_threads=threads, n_ctx=1024))
    rows, start = [], time.perf_counter()
    for turn in turns:
        before, after = track_turn(mode, backend, turn)
        rows.append({**score(turn, before, after), "id": turn.id})
    seconds = (time.perf_counter() - start) / max(1, len(turns))
    if backend is not None:
        backend.close()
    result = {k: v.as_dict() if v else None for k, v in accuracy(rows).items()}
    return {"accuracy": result, "s_per_turn": seconds, "rows": rows}


def _path_of(name: str) -> str | None:
    """The model argument for `name`: the bundled id, or the assembled catalog file if installed."""
    if name not in ASSEMBLED:
        return name
    home = Path(os.environ.get("ROLECRAFT_HOME", Path.home() / ".rolecraft")).expanduser()
    path = ASSEMBLED[name].path(models_dir(home))
    return str(path) if path.is_file() else None


def table(results: dict[str, dict]) -> str:
    head = "| tracker | " + " | ".join(COLUMNS) + " | s/turn |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for name, result in results.items():
        cells = []
        for key in COLUMNS:
            value = result["accuracy"].get(key)
            cells.append("–" if value is None else
                         f"{value['value']:.0%} [{value['low']:.0%}, {value['high']:.0%}]")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {result['s_per_turn']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2,qwen2.5-0.5b,qwen2.5-1.5b")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="First N turns only (0 = all).")
    parser.add_argument("--json", type=Path, help="Also write every score here.")
    args = parser.parse_args()
    turns = load_turns()
    turns = turns[: args.limit] if args.limit else turns
    results = {"rules": measure("rules", None, turns, args.threads)}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        model = _path_of(name)
        if model is None:
            print(f"{name}: not installed (rolecraft models install {name}); skipped", file=sys.stderr)
            continue
        results[f"model: {name}"] = measure("model", model, turns, args.threads)
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(f"{len(turns)} labelled turns ({sum(t.lang == 'zh' for t in turns)} Chinese); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
