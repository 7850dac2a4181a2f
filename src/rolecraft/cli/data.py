"""`rolecraft data`: build fine-tuning data (import, card examples, synthesis, preference pairs, splits)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from rolecraft.cli.context import engine_from
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.settings import Settings
from rolecraft.training import data, grounded, synth
from rolecraft.training.samples import TrainingSample, read_jsonl, write_jsonl

OUT = click.Path(dir_okay=False, path_type=Path)
IN = click.Path(exists=True, dir_okay=False, path_type=Path)


def _settings(ctx: click.Context) -> Settings:
    return ctx.find_root().obj


def _counts(label: str, counts: Counter) -> None:
    for reason, n in counts.most_common():
        click.echo(f"  {label}: {reason} × {n}")


@click.group("data")
def command() -> None:
    """Build training data for LoRA fine-tuning (JSON Lines of dialogues or preference pairs)."""


@command.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", *data.IMPORT_FORMATS]), default="auto",
              show_default=True)
@click.option("--character", help="Character (library id or name) for rows that name none.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Folder picture paths are relative to (default: each file's folder).")
@click.option("--observe", is_flag=True, help="Describe each picture with our perception (for text-only models).")
@click.option("-o", "--out", required=True, type=OUT, help="Training file to write (.jsonl).")
@click.pass_context
def import_(ctx: click.Context, files: tuple[Path, ...], fmt: str, character: str | None, images: Path | None,
            observe: bool, out: Path) -> None:
    """Convert MMRole, ShareGPT or OpenAI-messages FILES into one sample per conversation."""
    observer = data.image_observer(_settings(ctx)) if observe else None
    report = data.import_dialogues(list(files), out, fmt=fmt, character=character, images=images, observer=observer)
    for name, count in report.per_file.items():
        click.echo(f"{name}: {count} dialogues")
    _counts("skipped", report.skipped)
    click.echo(f"wrote {report.samples} samples to {out}")


@command.command("examples")
@click.argument("char_id")
@click.option("-o", "--out", required=True, type=OUT, help="Training file to write (.jsonl).")
@click.pass_context
def examples(ctx: click.Context, char_id: str, out: Path) -> None:
    """Turn a library character's example dialogue and greetings into samples."""
    engine = engine_from(ctx)
    samples = data.card_samples(engine.character(char_id), char_id, user=engine.settings.user_name)
    count = write_jsonl(out, samples)
    kinds = Counter(s.source for s in samples)
    click.echo(f"wrote {count} samples to {out} ({', '.join(f'{n} from {k}' for k, n in kinds.items())})")


@command.command("prepare")
@click.argument("inputs", nargs=-1, required=True, type=IN)
@click.option("--out-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for train.jsonl and eval.jsonl.")
@click.option("--eval-fraction", default=0.1, show_default=True, help="Share of dialogues held out for eval.")
@click.option("--seed", default=0, show_default=True, help="Seed of the train/eval split.")
@click.option("--max-tokens", default=1024, show_default=True, help="Drop dialogues longer than this (estimated).")
@click.option("--min-reply-chars", default=2, show_default=True, help="Shorter replies count as near-empty.")
def prepare(inputs: tuple[Path, ...], out_dir: Path, eval_fraction: float, seed: int, max_tokens: int,
            min_reply_chars: int) -> None:
    """Merge sample files, drop duplicates, near-empty replies and overlong dialogues, split train/eval."""
    report = data.prepare(list(inputs), out_dir, eval_fraction=eval_fraction, seed=seed, max_tokens=max_tokens,
                          min_reply_chars=min_reply_chars)
    click.echo(f"read {report.read} samples; kept {report.train_count + report.eval_count} "
               f"({report.trimmed} cut before a near-empty reply, {report.renamed} renamed for a clashing id)")
    _counts("dropped", report.dropped)
    click.echo(f"wrote {report.train_count} to {report.train}")
    click.echo(f"wrote {report.eval_count} to {report.eval}" if report.eval else "no eval split (too few samples)")


@command.command("synth")
@click.argument("char_id")
@click.option("--n", default=20, show_default=True, help="Dialogues to generate.")
@click.option("--turns", default=2, show_default=True, help="User/character exchanges per dialogue.")
@click.option("--seed", default=0, show_default=True, help="Seed of the prompts and of the sampling.")
@click.option("--teacher-backend", help="Backend of the teacher (default: --backend).")
@click.option("--teacher-model", help="Model of the teacher (default: --model).")
@click.option("--teacher-url", help="Server URL of an openai_compat teacher (default: --base-url).")
@click.option("--ooc-check", type=click.Choice(["auto", "embeddings", "tfidf"]), default="auto", show_default=True,
              help="Vectorizer of the out-of-character filter.")
@click.option("--min-reply-chars", default=8, show_default=True, help="Drop shorter replies.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["dialogue", *grounded.KINDS]),
              help="What to make (repeatable): 'dialogue' (default), or prompts whose replies must use the input: "
              "'grounding' (a picture), 'recall' (a fact planted earlier), 'voice' (first person, not the card); "
              "--n is then per kind.")
@click.option("--held-out", "held_suite", default="builtin", show_default=True,
              help="Evaluation suite whose photos and facts never enter the grounding/recall data.")
@click.option("-o", "--out", required=True, type=OUT, help="Training file to write (.jsonl).")
@click.pass_context
def synthesize(ctx: click.Context, char_id: str, n: int, turns: int, seed: int, teacher_backend: str | None,
               teacher_model: str | None, teacher_url: str | None, ooc_check: str, min_reply_chars: int,
               kinds: tuple[str, ...], held_suite: str, out: Path) -> None:
    """Have a teacher model play library character CHAR_ID and keep the replies that pass the filters."""
    settings = synth.teacher_settings(_settings(ctx), backend=teacher_backend, model=teacher_model,
                                      base_url=teacher_url)
    teacher = Engine(settings)
    ctx.call_on_close(teacher.close)
    if kinds and "dialogue" not in kinds:
        _synth_grounded(teacher, char_id, kinds, n=n, seed=seed, held_suite=held_suite, out=out,
                        detector=synth.ooc_detector(settings, ooc_check))
        return
    if kinds != ("dialogue",) and kinds:
        raise RolecraftError("--kind dialogue cannot be mixed with other kinds; write them to separate files",
                             code="invalid_option", param="kind")
    report = synth.synthesize(teacher, char_id, n=n, turns=turns, seed=seed, min_reply_chars=min_reply_chars,
                              detector=synth.ooc_detector(settings, ooc_check))
    click.echo(f"kept {len(report.samples)} of {report.attempted} dialogues ({report.cut_short} cut short)")
    _write_kept(out, report.samples, report.dropped, f"no dialogue with {char_id!r}")


def _synth_grounded(teacher: Engine, char_id: str, kinds: tuple[str, ...], *, n: int, seed: int, held_suite: str,
                    out: Path, detector: synth.OOCDetector) -> None:
    from rolecraft.evaluation.suite import load_suite

    held = grounded.held_out(load_suite(held_suite))
    report = grounded.synthesize_grounded(teacher, char_id, kinds, n=n, seed=seed, held=held, detector=detector)
    kept = Counter(s.source.split(":")[0].removeprefix("synth-") for s in report.samples)
    for kind, tried in report.attempted.items():
        click.echo(f"{kind}: kept {kept[kind]} of {tried}")
    _write_kept(out, report.samples, report.dropped, f"no reply of {char_id!r}")


def _write_kept(out: Path, samples: list[TrainingSample], dropped: Counter, nothing: str) -> None:
    """Report what the filters rejected, then write the kept samples (an error when none passed)."""
    _counts("rejected reply", dropped)
    if not samples:
        raise RolecraftError(f"{nothing} passed the filters ({data.reasons(dropped)})", code="no_samples")
    click.echo(f"wrote {write_jsonl(out, samples)} samples to {out}")


@command.command("pairs")
@click.option("--from-samples", "samples_file", type=IN, help="Pair each reply in this training file with a "
              "plain assistant's answer.")
@click.option("--from-store", is_flag=True, help="Pair the replies users kept with the swipes they regenerated.")
@click.option("--session", "session_id", help="With --from-store: only this session.")
@click.option("--seed", default=0, show_default=True, help="Sampling seed for the rejected replies.")
@click.option("-o", "--out", required=True, type=OUT, help="Preference file to write (.jsonl).")
@click.pass_context
def pairs(ctx: click.Context, samples_file: Path | None, from_store: bool, session_id: str | None, seed: int,
          out: Path) -> None:
    """Preference pairs (chosen in-character reply vs rejected reply) for DPO-style training."""
    if bool(samples_file) == from_store:
        raise RolecraftError("give exactly one of --from-samples FILE and --from-store", code="invalid_option",
                             param="from_samples")
    if session_id and not from_store:
        raise RolecraftError("--session goes with --from-store", code="invalid_option", param="session")
    engine = engine_from(ctx)
    if samples_file:
        report = synth.pairs_from_samples(engine, read_jsonl(samples_file, TrainingSample), seed=seed)
    else:
        report = synth.pairs_from_store(engine.store, session_id=session_id)
    _counts("dropped", report.dropped)
    if not report.pairs:
        raise RolecraftError(f"no preference pair could be made ({data.reasons(report.dropped)})", code="no_samples")
    click.echo(f"wrote {write_jsonl(out, report.pairs)} pairs to {out}")
