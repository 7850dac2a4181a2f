"""Write a run's report: report.json (machine), report.md (human), PNG plots, samples.jsonl.

Files are written atomically (temporary file, then rename), so an interrupted
write never leaves half a report. Plots use matplotlib's object API with the
Agg canvas (no global backend switch, no display needed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolecraft.errors import missing_extra
from rolecraft.files import write_atomic

if TYPE_CHECKING:
    from rolecraft.evaluation.runner import ConfigRun

COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


def write_report(summary: dict[str, Any], runs: list[ConfigRun], out_dir: Path) -> dict[str, Path]:
    """Write every report file; returns their paths by kind."""
    files: dict[str, Path] = {}
    try:
        files.update(draw_plots(summary, out_dir))
        summary["plots"] = {kind: path.name for kind, path in files.items()}
    except ImportError:
        summary["plots"] = {"error": str(missing_extra("matplotlib", "eval").message)}
    lines = [json.dumps({"configuration": run.config.name, **record.as_dict()}, ensure_ascii=False, default=str)
             for run in runs for record in run.records]
    files["samples"] = write_atomic(out_dir / "samples.jsonl", "\n".join(lines) + ("\n" if lines else ""))
    files["json"] = write_atomic(out_dir / "report.json", json.dumps(summary, indent=2, ensure_ascii=False))
    files["markdown"] = write_atomic(out_dir / "report.md", render_markdown(summary))
    return files


# ---------------------------------------------------------------------------- formatting


def fmt(scale: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if scale == "rate":
        return f"{value * 100:.0f}%"
    return f"{value:.1f}" if scale == "score" else f"{value:.2f}"


def fmt_interval(scale: str, cell: dict | None) -> str:
    if not cell:
        return "–"
    return f"{fmt(scale, cell['value'])} [{fmt(scale, cell['low'])}, {fmt(scale, cell['high'])}] (n={cell['n']})"


def fmt_lift(scale: str, cell: dict | None, higher_is_better: bool) -> str:
    if not cell:
        return "–"
    factor, unit = (100, " pts") if scale == "rate" else (1, "")
    digits = 0 if scale == "rate" else (1 if scale == "score" else 2)
    text = (f"{cell['value'] * factor:+.{digits}f}{unit} [{cell['low'] * factor:+.{digits}f}, "
            f"{cell['high'] * factor:+.{digits}f}]")
    if not cell["excludes_zero"]:
        return f"{text} (n.s.)"
    better = (cell["value"] > 0) == higher_is_better
    return f"{text} **{'better' if better else 'worse'}**"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def _configs_section(summary: dict) -> list[str]:
    rows = []
    for config in summary["configurations"]:
        s = config["settings"]
        overrides = ", ".join(f"{k}={v}" for k, v in config["overrides"].items()) or "(none)"
        state = "interrupted" if config["interrupted"] else ("given up: " + config["abandoned"]
                                                             if config["abandoned"] else "complete")
        rows.append([config["name"], overrides, f"{s.get('backend')}:{s.get('model')}", str(s.get("temperature")),
                     str(s.get("max_tokens")), str(s.get("catchphrase_bias")), state])
    return ["## Configurations", "", *_table(["name", "overrides", "backend:model", "temperature", "max_tokens",
                                              "catchphrase_bias", "run"], rows), ""]


def _judge_section(summary: dict) -> list[str]:
    judge = summary["judge"]
    if judge is None:
        return ["## Judge", "", "No judge configured: judge metrics are skipped, and the coherence probe uses a "
                "weak heuristic (see its notes).", ""]
    lines = ["## Judge", "", f"`{judge['model']}` at {judge['base_url']}; {judge['judged_metrics']} metric "
             f"judgements, {judge['parse_failures']} without a parsable score pair.", ""]
    if judge["weak_reasons"]:
        lines += ["**Warning: this judge is weak** — treat its scores as a smoke test: "
                  + "; ".join(judge["weak_reasons"]) + ".", ""]
    return lines


def _metric_rows(probe: dict, configs: list[str], baseline: str) -> list[list[str]]:
    rows = []
    for metric in probe["metrics"]:
        cells = [fmt_interval(metric["scale"], metric["results"].get(c)) for c in configs]
        lifts = [fmt_lift(metric["scale"], metric["lift"].get(c), metric["higher_is_better"]) for c in configs
                 if c != baseline]
        chance = probe["baselines"].get(metric["key"])
        label = metric["label"] + (f" (chance {fmt(metric['scale'], chance)})" if chance is not None else "")
        rows.append([label, *cells, *lifts])
    return rows


def _group_rows(probe: dict, configs: list[str]) -> list[list[str]]:
    groups = probe.get("groups")
    if not groups:
        return []
    scales = {m["key"]: m["scale"] for m in probe["metrics"]}
    rows = []
    for group, by_config in groups["rows"].items():
        for key, scale in scales.items():
            cells = [fmt_interval(scale, by_config.get(c, {}).get(key)) for c in configs]
            if any(cell != "–" for cell in cells):
                rows.append([group or "–", key, *cells])
    return rows


def _skip_lines(probe: dict) -> list[str]:
    lines = []
    for config, skips in probe["skipped_samples"].items():
        for code, info in skips.items():
            lines.append(f"- {config}: {info['count']} skipped ({code}): {info['example']}")
    for metric in probe["metrics"]:
        for config, failures in metric["failures"].items():
            lines += [f"- {config}: {metric['label']}: {n} not measured ({reason})" for reason, n in failures.items()]
    return lines


def _probe_section(probe: dict, configs: list[str], baseline: str) -> list[str]:
    lines = [f"### {probe['title']} (`{probe['name']}`)", ""]
    skipped = {c: s for c, s in probe["status"].items() if s != "ran"}
    if len(skipped) == len(probe["status"]):
        return [*lines, f"{next(iter(skipped.values()))}", ""]
    header = ["metric", *configs, *[f"{c} − {baseline}" for c in configs if c != baseline]]
    lines += [*_table(header, _metric_rows(probe, configs, baseline)), ""]
    group_rows = _group_rows(probe, configs)
    if group_rows:
        lines += [f"By {probe['groups']['label']}:", "", *_table([probe["groups"]["label"], "metric", *configs],
                                                                 group_rows), ""]
    lines += [f"- {c}: {s}" for c, s in skipped.items()]
    lines += _skip_lines(probe)
    lines += [f"- {note}" for note in probe["notes"]]
    return [*lines, ""]


def _timing_section(summary: dict) -> list[str]:
    rows = [[name, str(t["samples"]), str(t.get("generations", 0)), f"{t['wall_s']:.1f}", f"{t['model_s']:.1f}",
             f"{t.get('judge_s', 0):.1f}", f"{t.get('embedding_s', 0):.1f}", f"{t['samples_per_min']:.1f}",
             f"{t['outside_model_share']:.0%}"] for name, t in summary["timing"].items()]
    header = ["configuration", "samples", "generations", "wall s", "model s", "judge s", "embedding s",
              "samples/min", "time outside the model"]
    return ["## Throughput", "", *_table(header, rows), "",
            "Samples include cached ones; 'model s' is time inside the generation backend (prefill + decode), "
            "'outside the model' is everything else (prompt building, storage, scoring, embeddings).", ""]


def render_markdown(summary: dict) -> str:
    configs = [c["name"] for c in summary["configurations"]]
    baseline = summary["baseline"] or ""
    lines = [f"# rolecraft eval — suite `{summary['suite']['name']}`", "",
             f"Created {summary['created']}; seed {summary['seed']}; {summary['bootstrap_rounds']} bootstrap rounds, "
             f"{summary['confidence']:.0%} intervals; baseline `{baseline}`. Lifts are paired differences against "
             "the baseline on the same samples and seeds; **better**/**worse** marks an interval that excludes 0.",
             ""]
    if summary["command"]:
        lines += [f"Command: `{' '.join(summary['command'])}`", ""]
    if summary["interrupted"]:
        lines += ["**The run was interrupted**: numbers cover the samples that finished; rerun to resume.", ""]
    lines += _configs_section(summary) + _judge_section(summary)
    if summary.get("similarity"):
        lines += [f"Similarity for attribution and the out-of-character classifier: {summary['similarity']}.", ""]
    lines += ["## Results", ""]
    for probe in summary["probes"]:
        lines += _probe_section(probe, configs, baseline)
    lines += _timing_section(summary) + _dataset_section(summary)
    plots = summary.get("plots", {})
    lines += ["## Plots", ""] + ([f"![{kind}]({name})" for kind, name in plots.items() if kind != "error"]
                                 or [f"Not drawn: {plots.get('error', 'no data')}"]) + [""]
    return "\n".join(lines)


def _dataset_section(summary: dict) -> list[str]:
    if not summary["datasets"]:
        return []
    rows = [[d["name"], d["format"], str(d["samples"]),
             "; ".join(f"{reason} ×{n}" for reason, n in d["skipped"].items()) or "none"] for d in summary["datasets"]]
    return ["## Datasets", "", *_table(["dataset", "format", "samples", "skipped rows"], rows), ""]


# ---------------------------------------------------------------------------- plots


def _error(cell: dict) -> tuple[float, float]:
    return max(0.0, cell["value"] - cell["low"]), max(0.0, cell["high"] - cell["value"])


def _bars(ax: Any, probe: dict, configs: list[str]) -> None:
    metrics = [m for m in probe["metrics"] if any(m["results"].get(c) for c in configs)]
    width = 0.8 / max(1, len(configs))
    for i, config in enumerate(configs):
        cells = [m["results"].get(config) for m in metrics]
        scale = [100.0 if m["scale"] == "score" else 1.0 for m in metrics]
        values = [c["value"] / s if c else 0.0 for c, s in zip(cells, scale, strict=True)]
        errors = [_error(c) if c else (0.0, 0.0) for c in cells]
        yerr = [[e[0] / s for e, s in zip(errors, scale, strict=True)],
                [e[1] / s for e, s in zip(errors, scale, strict=True)]]
        xs = [j + i * width - 0.4 + width / 2 for j in range(len(metrics))]
        ax.bar(xs, values, width, yerr=yerr, capsize=3, label=config, color=COLORS[i % len(COLORS)])
    for j, metric in enumerate(metrics):
        chance = probe["baselines"].get(metric["key"])
        if chance is not None:
            ax.hlines(chance, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1,
                      label="chance" if j == 0 else None)
    if all(m["scale"] in ("rate", "f1", "score") for m in metrics):
        ax.set_ylim(0, 1.05)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels([m["key"] + (" /100" if m["scale"] == "score" else "") for m in metrics], fontsize=8,
                       rotation=20)
    ax.set_title(probe["title"], fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def draw_plots(summary: dict, out_dir: Path) -> dict[str, Path]:
    """metrics.png (per-metric bars with 95% error bars) and recall_depth.png (fact recall vs depth)."""
    from matplotlib.figure import Figure

    configs = [c["name"] for c in summary["configurations"]]
    probes = [p for p in summary["probes"] if any(any(m["results"].values()) for m in p["metrics"])]
    if not probes:
        return {}
    cols = 2 if len(probes) > 1 else 1
    rows = math.ceil(len(probes) / cols)
    figure = Figure(figsize=(6.5 * cols, 3.4 * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False).flatten()
    for ax, probe in zip(axes, probes, strict=False):
        _bars(ax, probe, configs)
    for ax in axes[len(probes):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"rolecraft eval — {summary['suite']['name']} ({summary['confidence']:.0%} bootstrap intervals)")
    files = {"metrics": out_dir / "metrics.png"}
    figure.savefig(files["metrics"], dpi=110)
    recall = next((p for p in probes if p["name"] == "fact_recall" and p.get("groups")), None)
    if recall:
        files["recall_depth"] = _recall_plot(recall, configs, out_dir / "recall_depth.png")
    return files


def _recall_plot(probe: dict, configs: list[str], path: Path) -> Path:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    ax = figure.subplots()
    depths = sorted(probe["groups"]["rows"], key=lambda g: int(g) if g.isdigit() else 0)
    for i, config in enumerate(configs):
        for key, style in (("recalled", "-o"), ("in_prompt", "--s")):
            cells = [probe["groups"]["rows"][d].get(config, {}).get(key) for d in depths]
            points = [(int(d), c) for d, c in zip(depths, cells, strict=True) if c]
            if not points:
                continue
            shift = (i - (len(configs) - 1) / 2) * 0.12  # side by side, so equal results stay visible
            xs, ys = [p[0] + shift for p in points], [p[1]["value"] for p in points]
            errors = [_error(p[1]) for p in points]
            ax.errorbar(xs, ys, yerr=[[e[0] for e in errors], [e[1] for e in errors]], fmt=style, capsize=3,
                        color=COLORS[i % len(COLORS)], label=f"{config}: {key.replace('_', ' ')}")
    ax.set_xlabel("turn depth (unrelated exchanges between planting and asking)")
    ax.set_ylabel("share of samples")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Fact recall vs turn depth")
    figure.savefig(path, dpi=110)
    return path
