"""Run a suite against one or more configurations and write the report.

Configurations run one after another on the same samples and seeds; the first
is the baseline every other one is compared with. Each sample is isolated: a
malformed item, a backend error or a missing capability becomes a counted skip
in the report, and after several consecutive errors a configuration is given
up (the rest counted as not run) instead of hammering a dead server. Ctrl-C
stops the run, and the report is still written from what finished; the
cache makes the next run resume.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolecraft.errors import RolecraftError
from rolecraft.evaluation.context import Cache, Configuration, ProbeContext, digest, public_settings, settings_for
from rolecraft.evaluation.datasets import DialogueSample
from rolecraft.evaluation.judge import Judge, JudgeConfig
from rolecraft.evaluation.probes import Probe, Record, Sample, SkipSample, get_probes
from rolecraft.evaluation.similarity import Vectorizer, make_vectorizer
from rolecraft.evaluation.suite import Suite
from rolecraft.settings import Settings
from rolecraft.store.db import slugify

EVAL_MAX_TOKENS = 48
SPEED_ONLY = {"n_threads"}  # settings that change speed, not replies: a cache made with others still applies


@dataclass
class EvalPlan:
    """Everything one `rolecraft eval` run needs besides the base settings."""

    suite: Suite
    configurations: list[Configuration]
    out_dir: Path
    probes: list[str] | None = None
    dialogues: list[DialogueSample] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    rounds: int = 1000
    judge: JudgeConfig | None = None
    similarity: str = "auto"
    fresh: bool = False
    progress: bool = True
    max_failures: int = 5
    command: list[str] = field(default_factory=list)


@dataclass
class ConfigRun:
    """What one configuration produced."""

    config: Configuration
    settings: dict[str, Any]
    fingerprint: str
    records: list[Record] = field(default_factory=list)
    skipped_probes: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    abandoned: str | None = None
    interrupted: bool = False


@dataclass
class _Failures:
    """Consecutive sample errors in one configuration (not counting deliberate skips)."""

    limit: int
    streak: int = 0
    last: str = ""

    @property
    def abandoned(self) -> bool:
        return self.streak >= self.limit


def validate_configurations(settings: Settings, configurations: list[Configuration]) -> None:
    """Fail before any work when a configuration has a duplicate name or invalid settings."""
    if not configurations:
        raise RolecraftError("no configuration to evaluate", code="invalid_option", param="config")
    names = [c.name for c in configurations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RolecraftError(f"configuration names must be unique: {', '.join(duplicates)}", code="invalid_option",
                             param="config")
    for config in configurations:
        settings_for(settings, config.overrides, what=f"configuration {config.name!r}")


def _progress(samples: list[Sample], label: str, enabled: bool) -> Iterable[Sample]:
    if not enabled:
        return samples
    try:
        from tqdm import tqdm
    except ImportError:
        return samples
    return tqdm(samples, desc=label, unit="sample", file=sys.stderr, leave=False, dynamic_ncols=True)


def _run_sample(probe: Probe, ctx: ProbeContext, sample: Sample, failures: _Failures) -> Record:
    if failures.abandoned:
        return Record(probe.name, sample.id, sample.group, skipped="not_run",
                      details={"message": f"configuration given up after {failures.limit} errors in a row "
                                          f"(last: {failures.last})"})
    try:
        record = probe.run(ctx, sample)
    except SkipSample as exc:
        return Record(probe.name, sample.id, sample.group, skipped=exc.code, details={"message": exc.message})
    except RolecraftError as exc:
        failures.streak, failures.last = failures.streak + 1, exc.message
        return Record(probe.name, sample.id, sample.group, skipped=exc.code, details={"message": exc.message})
    except Exception as exc:  # one broken sample must not lose the finished ones
        failures.streak, failures.last = failures.streak + 1, f"{type(exc).__name__}: {exc}"
        return Record(probe.name, sample.id, sample.group, skipped="internal_error",
                      details={"message": failures.last})
    failures.streak = 0
    return record


def _run_probe(probe: Probe, ctx: ProbeContext, run: ConfigRun, plan: EvalPlan, failures: _Failures) -> None:
    try:
        reason = probe.prepare(ctx)
    except RolecraftError as exc:
        reason = exc.message
    if reason:
        run.skipped_probes[probe.name] = reason
        return
    label = f"{run.config.name} · {probe.name}"
    for sample in _progress(probe.samples(ctx), label, plan.progress):
        run.records.append(_run_sample(probe, ctx, sample, failures))
    try:
        run.notes[probe.name] = probe.notes(ctx)
        run.baselines[probe.name] = probe.baselines(ctx)
    except RolecraftError as exc:
        run.notes[probe.name] = [f"notes unavailable: {exc.message}"]


def _config_run(settings: Settings, plan: EvalPlan, config: Configuration, probes: list[Probe], judge: Judge | None,
                vectorizer: Any) -> ConfigRun:
    db = {"database_url": f"sqlite:///{(plan.out_dir / 'sessions.db').resolve()}"}
    effective = settings_for(settings, {**config.overrides, **db}, what=f"configuration {config.name!r}")
    public = public_settings(effective)
    fingerprint = digest({k: v for k, v in public.items() if k not in SPEED_ONLY})
    cache = Cache(plan.out_dir / "cache" / f"{slugify(config.name)}-{fingerprint}.jsonl", fresh=plan.fresh)
    run = ConfigRun(config, public, fingerprint)
    ctx = ProbeContext(effective, config, plan.suite, cache=cache, seed=plan.seed, dialogues=plan.dialogues,
                       judge=judge, vectorizer=vectorizer, user_db=settings.db_url)
    judge_before, embed_before = _judge_seconds(judge), vectorizer.seconds_so_far()
    start, failures = time.perf_counter(), _Failures(plan.max_failures)
    try:
        for probe in probes:
            _run_probe(probe, ctx, run, plan, failures)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        run.timing = {"wall_s": time.perf_counter() - start, **ctx.timings(),
                      "judge_s": _judge_seconds(judge) - judge_before,
                      "embedding_s": vectorizer.seconds_so_far() - embed_before}
        ctx.close()
    run.abandoned = failures.last if failures.abandoned else None
    run.cache = {"file": str(cache.path), "hits": cache.hits, "torn_lines": cache.torn}
    return run


def _judge_seconds(judge: Judge | None) -> float:
    return judge.seconds if judge else 0.0


class SharedVectorizer:
    """One vectorizer for the whole run (the embedding model loads once), created on first use."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.instance: Vectorizer | None = None

    def __call__(self) -> Vectorizer:
        if self.instance is None:
            self.instance = make_vectorizer(self.method)
        return self.instance

    def seconds_so_far(self) -> float:
        return self.instance.seconds if self.instance else 0.0


@dataclass
class EvalResult:
    """The summary (what report.json holds), the files written, and the raw runs."""

    summary: dict[str, Any]
    files: dict[str, Path]
    runs: list[ConfigRun]

    @property
    def interrupted(self) -> bool:
        return any(run.interrupted for run in self.runs)


def run_eval(settings: Settings, plan: EvalPlan) -> EvalResult:
    """Run every configuration in order, then write report.json, report.md, plots and samples.jsonl."""
    from rolecraft.evaluation.report import write_report
    from rolecraft.evaluation.summary import summarize

    validate_configurations(settings, plan.configurations)
    probes = get_probes(plan.probes)
    judge = Judge(plan.judge, seed=plan.seed) if plan.judge else None
    vectorizer = SharedVectorizer(plan.similarity)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    runs: list[ConfigRun] = []
    for config in plan.configurations:
        runs.append(_config_run(settings, plan, config, probes, judge, vectorizer))
        if runs[-1].interrupted:
            break
    similarity = vectorizer.instance.method if vectorizer.instance else None
    summary = summarize(plan, runs, probes, similarity=similarity)
    return EvalResult(summary, write_report(summary, runs, plan.out_dir), runs)


def eval_settings(settings: Settings) -> Settings:
    """The base settings of a run: the user's, with short replies unless max_tokens was set explicitly."""
    if "max_tokens" in settings.model_fields_set:
        return settings
    return settings_for(settings, {"max_tokens": EVAL_MAX_TOKENS}, what="evaluation defaults")
