"""`rolecraft eval`: run an evaluation suite against one or more configurations and write a report.

With no arguments it runs the built-in suite offline on the configured model
(the bundled SmolLM2 by default), comparing catchphrase bias off and on, and
writes report.json, report.md and PNG plots under <home>/evals/<suite>/.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from rolecraft.errors import RolecraftError
from rolecraft.evaluation import (
    Configuration,
    EvalPlan,
    JudgeConfig,
    available_probes,
    eval_settings,
    load_dataset,
    load_suite,
    run_eval,
)
from rolecraft.evaluation.datasets import FORMATS
from rolecraft.evaluation.report import fmt, fmt_interval, fmt_lift
from rolecraft.evaluation.suite import Suite
from rolecraft.settings import Settings
from rolecraft.store.db import slugify

SECRET_FLAGS = {"--judge-api-key", "--api-key"}


def parse_config(text: str) -> Configuration:
    """'NAME' or 'NAME:key=value;key=value' (values are validated as settings later)."""
    name, _, rest = text.partition(":")
    overrides: dict[str, object] = {}
    for part in filter(str.strip, rest.split(";")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise RolecraftError(f"bad --config {text!r}: expected NAME:key=value;key=value", code="invalid_option",
                                 param="config")
        overrides[key.strip().replace("-", "_")] = None if value.strip() == "null" else value.strip()
    if not name.strip():
        raise RolecraftError(f"bad --config {text!r}: the configuration needs a name", code="invalid_option",
                             param="config")
    return Configuration(name.strip(), overrides)


def default_configurations(settings: Settings) -> list[Configuration]:
    """Catchphrase bias off (the baseline) against on, so the lift reads as the effect of the bias."""
    strength = settings.catchphrase_bias or Settings.model_fields["catchphrase_bias"].default
    return [Configuration("no_bias", {"catchphrase_bias": 0.0}),
            Configuration("catchphrase_bias", {"catchphrase_bias": strength})]


def _command_line() -> list[str]:
    args, hide = ["rolecraft", *sys.argv[1:]], False
    for i, arg in enumerate(args):
        if hide:
            args[i], hide = "***", False
        elif arg in SECRET_FLAGS:
            hide = True
        elif arg.split("=", 1)[0] in SECRET_FLAGS:
            args[i] = arg.split("=", 1)[0] + "=***"
    return args


def _print_summary(summary: dict) -> None:
    for probe in summary["probes"]:
        ran = [c for c, s in probe["status"].items() if s == "ran"]
        if not ran:
            click.echo(f"{probe['name']:<16} {next(iter(probe['status'].values()))}")
            continue
        for metric in probe["metrics"]:
            cells = "  ".join(f"{c}={fmt_interval(metric['scale'], metric['results'].get(c))}" for c in ran)
            lifts = "  ".join(f"Δ {c}: {fmt_lift(metric['scale'], cell, metric['higher_is_better'])}"
                              for c, cell in metric["lift"].items() if cell)
            click.echo(f"{probe['name'] + '.' + metric['key']:<32} {cells}  {lifts}".rstrip())
    for name, timing in summary["timing"].items():
        click.echo(f"throughput {name}: {timing['samples_per_min']:.1f} samples/min, "
                   f"{fmt('rate', timing['outside_model_share'])} of the time outside the model")
    if summary["judge"] and summary["judge"]["weak_reasons"]:
        click.echo("warning: the judge is weak: " + "; ".join(summary["judge"]["weak_reasons"]), err=True)


def _datasets(paths: tuple[Path, ...], fmt_name: str, profiles: Path | None, images: Path | None, limit: int,
              all_turns: bool) -> tuple[list, list[dict]]:
    samples, summaries = [], []
    for path in paths:
        dataset = load_dataset(path, fmt_name, profiles=profiles, images=images, limit=limit,
                               turns="all" if all_turns else "last")
        samples += dataset.samples
        summaries.append({"name": dataset.name, "format": dataset.format, "samples": len(dataset.samples),
                          "skipped": dict(dataset.skipped)})
    return samples, summaries


def _judge(url: str | None, model: str | None, key: str, weak: bool, max_tokens: int) -> JudgeConfig | None:
    if not url and not model:
        return None
    if not (url and model):
        raise RolecraftError("a judge needs both --judge-url and --judge-model", code="invalid_option",
                             param="judge")
    return JudgeConfig(base_url=url, model=model, api_key=key, weak=weak, max_tokens=max_tokens)


@click.command("eval")
@click.argument("suite", required=False, default="builtin")
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Report folder [default: <home>/evals/<suite>].")
@click.option("-c", "--config", "configs", multiple=True, metavar="NAME[:key=value;...]",
              help="A configuration as Settings overrides; repeat to compare. The first is the baseline. "
                   "[default: no_bias:catchphrase_bias=0 vs catchphrase_bias:catchphrase_bias=<yours or 2>]")
@click.option("--probes", help=f"Comma-separated probes to run [default: all: {', '.join(available_probes())}].")
@click.option("--dataset", "datasets", multiple=True, type=click.Path(path_type=Path),
              help="A dataset file to add (MMRole JSON, ShareGPT, OpenAI messages JSONL, CharacterEval); repeatable.")
@click.option("--format", "fmt_name", type=click.Choice(["auto", *FORMATS]), default="auto", show_default=True)
@click.option("--profiles", type=click.Path(path_type=Path), help="CharacterEval character_profiles.json.")
@click.option("--images", type=click.Path(path_type=Path), help="Folder that dataset image paths are relative to.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="Samples per dataset.")
@click.option("--all-turns", is_flag=True, help="Every answered turn of a dataset dialogue is a sample.")
@click.option("--judge-url", envvar="ROLECRAFT_JUDGE_URL", help="OpenAI-compatible judge server (…/v1).")
@click.option("--judge-model", envvar="ROLECRAFT_JUDGE_MODEL", help="Judge model name on that server.")
@click.option("--judge-api-key", envvar="ROLECRAFT_JUDGE_API_KEY", default="none", show_default=False,
              help="Judge API key (env ROLECRAFT_JUDGE_API_KEY).")
@click.option("--judge-weak", is_flag=True, help="Mark the judge as weak (e.g. a small local model) in the report.")
@click.option("--judge-max-tokens", type=click.IntRange(16), default=384, show_default=True,
              help="Longest judge review.")
@click.option("--similarity", type=click.Choice(["auto", "embeddings", "tfidf"]), default="auto", show_default=True,
              help="Vectorizer for persona attribution and the out-of-character classifier.")
@click.option("--seed", type=int, help="Run seed [default: the seed setting, else 0].")
@click.option("--bootstrap", "rounds", type=click.IntRange(0), default=1000, show_default=True,
              help="Bootstrap rounds for intervals.")
@click.option("--fresh", is_flag=True, help="Ignore cached results in the report folder and start over.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.pass_context
def command(ctx: click.Context, suite: str, **opts: Any) -> None:
    """Evaluate role-play quality on SUITE (default: the built-in suite) and write a report."""
    settings = eval_settings(ctx.find_root().obj)
    result = run_eval(settings, _plan(settings, load_suite(suite), opts))
    _print_summary(result.summary)
    for kind, path in result.files.items():
        click.echo(f"{kind}: {path}")
    if result.interrupted:
        click.echo("interrupted: the report covers what finished; run the same command again to resume", err=True)
        sys.exit(130)


def _plan(settings: Settings, suite: Suite, opts: dict[str, Any]) -> EvalPlan:
    dialogues, dataset_info = _datasets(opts["datasets"], opts["fmt_name"], opts["profiles"], opts["images"],
                                        opts["limit"], opts["all_turns"])
    judge = _judge(opts["judge_url"], opts["judge_model"], opts["judge_api_key"], opts["judge_weak"],
                   opts["judge_max_tokens"])
    probes = [p.strip() for p in opts["probes"].split(",") if p.strip()] if opts["probes"] else None
    seed = opts["seed"] if opts["seed"] is not None else (settings.seed or 0)
    return EvalPlan(
        suite=suite, configurations=[parse_config(c) for c in opts["configs"]] or default_configurations(settings),
        out_dir=opts["out"] or settings.home / "evals" / slugify(suite.name), probes=probes, dialogues=dialogues,
        datasets=dataset_info, seed=seed, rounds=opts["rounds"], judge=judge, similarity=opts["similarity"],
        fresh=opts["fresh"], progress=not opts["no_progress"], command=_command_line(),
    )
