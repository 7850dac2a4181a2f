"""Turn per-sample records into the report's numbers: intervals, paired lifts, skips, timing.

Everything here is plain data (the content of report.json), so the Markdown
table and the plots are just views of it.
"""

from __future__ import annotations

import platform
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import numpy as np

from rolecraft import __version__
from rolecraft.evaluation.judge import NO_SCORE, weak_reasons
from rolecraft.evaluation.probes import MetricSpec, Probe, Record
from rolecraft.evaluation.stats import Interval, bootstrap, mean_interval, paired_difference

if TYPE_CHECKING:
    from rolecraft.evaluation.runner import ConfigRun, EvalPlan

CONFIDENCE = 0.95
VERSIONED = ("llama-cpp-python", "openai", "sacrebleu", "torch", "transformers", "numpy", "matplotlib")


def _measured(records: list[Record], probe: str, key: str) -> list[Record]:
    return [r for r in records if r.probe == probe and r.skipped is None and r.values.get(key) is not None]


def _interval(spec: MetricSpec, records: list[Record], rounds: int, seed: int) -> Interval | None:
    if spec.corpus is None:
        return mean_interval([r.values[spec.key] for r in records], rounds=rounds, seed=seed)
    return bootstrap(len(records), lambda idx: spec.corpus(records, idx), rounds=rounds, seed=seed)


def _lift(spec: MetricSpec, base: list[Record], other: list[Record], rounds: int, seed: int) -> Interval | None:
    """Paired bootstrap of other − base over the samples both measured."""
    by_id = {r.sample_id: r for r in base}
    pairs = [(by_id[r.sample_id], r) for r in other if r.sample_id in by_id]
    if not pairs:
        return None
    a, b = [p[1] for p in pairs], [p[0] for p in pairs]
    if spec.corpus is None:
        diffs = [x.values[spec.key] - y.values[spec.key] for x, y in zip(a, b, strict=True)]
        return mean_interval(diffs, rounds=rounds, seed=seed)
    return paired_difference(len(pairs), lambda idx: spec.corpus(a, idx), lambda idx: spec.corpus(b, idx),
                             rounds=rounds, seed=seed)


def _as_dict(interval: Interval | None) -> dict[str, Any] | None:
    if interval is None:
        return None
    return {**interval.as_dict(), "excludes_zero": interval.excludes_zero}


def _groups(probe: Probe, runs: list[ConfigRun], plan: EvalPlan) -> dict[str, Any] | None:
    if not probe.group_label:
        return None
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        groups = sorted({r.group for r in run.records if r.probe == probe.name},
                        key=lambda g: (not g.isdigit(), int(g) if g.isdigit() else 0, g))
        for group in groups:
            chosen = [r for r in run.records if r.group == group]
            cell = rows.setdefault(group, {}).setdefault(run.config.name, {})
            for spec in probe.metrics:
                measured = _measured(chosen, probe.name, spec.key)
                cell[spec.key] = _as_dict(_interval(spec, measured, plan.rounds, plan.seed))
    return {"label": probe.group_label, "rows": rows}


def _skips(records: list[Record], probe: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.probe == probe and record.skipped:
            entry = out.setdefault(record.skipped, {"count": 0, "example": record.details.get("message", "")})
            entry["count"] += 1
    return out


def _failures(records: list[Record], probe: str, key: str) -> dict[str, int]:
    return dict(Counter(r.failures[key] for r in records if r.probe == probe and key in r.failures))


def _metric(spec: MetricSpec, probe: Probe, runs: list[ConfigRun], plan: EvalPlan) -> dict[str, Any]:
    base = _measured(runs[0].records, probe.name, spec.key)
    results, lifts, failures = {}, {}, {}
    for run in runs:
        measured = _measured(run.records, probe.name, spec.key)
        results[run.config.name] = _as_dict(_interval(spec, measured, plan.rounds, plan.seed))
        failures[run.config.name] = _failures(run.records, probe.name, spec.key)
        if run is not runs[0]:
            lifts[run.config.name] = _as_dict(_lift(spec, base, measured, plan.rounds, plan.seed))
    return {"key": spec.key, "label": spec.label, "scale": spec.scale, "higher_is_better": spec.higher_is_better,
            "corpus_level": spec.corpus is not None, "results": results, "lift": lifts, "failures": failures}


def _probe(probe: Probe, runs: list[ConfigRun], plan: EvalPlan) -> dict[str, Any]:
    status = {run.config.name: (f"skipped: {run.skipped_probes[probe.name]}" if probe.name in run.skipped_probes
                                else "ran") for run in runs}
    ran = [run for run in runs if probe.name not in run.skipped_probes]
    notes = next((run.notes.get(probe.name) for run in ran if run.notes.get(probe.name)), [])
    baselines = next((run.baselines.get(probe.name) for run in ran if run.baselines.get(probe.name)), {})
    return {
        "name": probe.name, "title": probe.title, "status": status, "notes": notes, "baselines": baselines,
        "metrics": [_metric(spec, probe, runs, plan) for spec in probe.metrics] if ran else [],
        "groups": _groups(probe, runs, plan) if ran else None,
        "samples": {run.config.name: sum(r.probe == probe.name for r in run.records) for run in runs},
        "skipped_samples": {run.config.name: _skips(run.records, probe.name) for run in runs},
    }


def _timing(run: ConfigRun) -> dict[str, Any]:
    timing = dict(run.timing)
    wall = timing.get("wall_s", 0.0) or 1e-9
    samples = len(run.records)
    inside = timing.get("model_s", 0.0) + timing.get("judge_s", 0.0)
    timing.update(samples=samples, samples_per_min=samples / wall * 60,
                  outside_model_share=max(0.0, 1 - inside / wall), cache_hits=run.cache.get("hits", 0))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in timing.items()}


def _judge(plan: EvalPlan, runs: list[ConfigRun]) -> dict[str, Any] | None:
    if plan.judge is None:
        return None
    judged = [r for run in runs for r in run.records if r.probe == "judge" and r.skipped is None]
    asked = sum(len(r.details.get("reviews", {})) for r in judged)
    unparsed = sum(1 for r in judged for reason in r.failures.values() if reason == NO_SCORE)
    rate = unparsed / asked if asked else None
    models = sorted({str(run.settings.get("model")) for run in runs})
    return {**plan.judge.public(), "parse_failures": unparsed, "judged_metrics": asked,
            "weak_reasons": weak_reasons(plan.judge, parse_failure_rate=rate, evaluated_models=models)}


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "rolecraft": __version__}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def summarize(plan: EvalPlan, runs: list[ConfigRun], probes: list[Probe], *, similarity: str | None) -> dict:
    """The whole report as plain data."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": plan.command,
        "suite": {"name": plan.suite.name, "fingerprint": plan.suite.fingerprint(),
                  "description": plan.suite.description},
        "datasets": plan.datasets,
        "seed": plan.seed, "bootstrap_rounds": plan.rounds, "confidence": CONFIDENCE,
        "baseline": runs[0].config.name if runs else None,
        "configurations": [{"name": run.config.name, "overrides": run.config.overrides, "settings": run.settings,
                            "fingerprint": run.fingerprint, "cache": run.cache, "abandoned": run.abandoned,
                            "interrupted": run.interrupted} for run in runs],
        "judge": _judge(plan, runs),
        "similarity": similarity,
        "probes": [_probe(probe, runs, plan) for probe in probes] if runs else [],
        "timing": {run.config.name: _timing(run) for run in runs},
        "interrupted": any(run.interrupted for run in runs),
        "versions": _versions(),
        "mean_reply_chars": {run.config.name: _mean_reply(run) for run in runs},
    }


def _mean_reply(run: ConfigRun) -> float | None:
    lengths = [len(r.details["reply"]) for r in run.records if isinstance(r.details.get("reply"), str)]
    return round(float(np.mean(lengths)), 1) if lengths else None
