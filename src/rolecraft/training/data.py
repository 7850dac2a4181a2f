"""Training data from what people already have: role-play datasets, character cards, and clean splits.

`import_dialogues` turns MMRole, ShareGPT and OpenAI-messages files into
`TrainingSample`s, one per whole conversation (the evaluation loaders parse the
same rows, and split them into one sample per reply instead). Pictures stay
files, referenced relative to the output file, and can be described by our
perception for text-only models. `card_samples` turns a library card's example
dialogue and greetings into samples. `prepare` merges sample files, drops what
would only teach noise (duplicates, near-empty replies, dialogues too long to
train on) and writes a train/eval split that stays put as the data grows.
Rows that cannot be used are skipped and counted by reason, never fatal; a file
with nothing usable is an error that says why.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolecraft.characters.macros import expand_macros
from rolecraft.errors import RolecraftError
from rolecraft.evaluation.datasets import RowError, detect_format, read_rows, row_conversation
from rolecraft.training.samples import TrainingSample, Turn, read_jsonl, write_jsonl

if TYPE_CHECKING:
    from rolecraft.characters.model import Character
    from rolecraft.settings import Settings

IMPORT_FORMATS = ("mmrole", "sharegpt", "openai")
CHARS_PER_TOKEN = 3.5  # rough estimate; the trainer counts exactly with the model's tokenizer

Observer = Callable[[Path, str, str], str]  # picture file, character, user → observation text


def reasons(counts: Counter) -> str:
    """'reason × n' for every counted reason, most common first."""
    return ", ".join(f"{reason} × {n}" for reason, n in counts.most_common())


# importing datasets --------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import wrote, per input file, and what it skipped by reason."""

    out: Path
    samples: int = 0
    per_file: dict[str, int] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)


def image_observer(settings: Settings) -> Observer:
    """Describe pictures the way a chat turn does (same options, template and on-disk cache)."""
    from rolecraft.perception import ImageOptions, ObservationCache, observe_image, render_observation

    cache = ObservationCache(folder=settings.home / "cache" / "images")
    options = ImageOptions(max_pixels=settings.image_max_pixels)

    def observe(path: Path, char: str, user: str) -> str:
        seen = observe_image(path.read_bytes(), options=options, cache=cache)
        return render_observation(seen, settings.image_template, char=char, user=user)

    return observe


def observe_pictures(samples: Sequence[TrainingSample], data_dir: Path, observer: Observer,
                     name_of: Callable[[TrainingSample], str]) -> list[TrainingSample]:
    """Samples whose pictures have no text observation yet get one, as a chat turn would (text-only models
    read pictures as observations). A picture file that is missing is an error naming it."""
    out = []
    for sample in samples:
        turns = []
        for turn in sample.messages:
            if turn.images and not turn.observation:
                files = [data_dir / image for image in turn.images]
                missing = [str(f) for f in files if not f.is_file()]
                if missing:
                    raise RolecraftError(f"sample {sample.id!r}: picture not found: {', '.join(missing)}",
                                         code="missing_image", param="data")
                seen = "\n".join(observer(f, name_of(sample), sample.user) for f in files)
                turn = turn.model_copy(update={"observation": seen})
            turns.append(turn)
        out.append(sample.model_copy(update={"messages": turns}))
    return out


def import_dialogues(paths: Sequence[Path], out: Path, *, fmt: str = "auto", character: str | None = None,
                     images: Path | None = None, observer: Observer | None = None) -> ImportReport:
    """Convert dataset files into one training file (one sample per conversation) and write it to `out`.

    `character` is the character (a library id or a name) for rows that name none; `images` is the
    folder picture paths are relative to (default: each file's own folder)."""
    if fmt not in (*IMPORT_FORMATS, "auto"):
        raise RolecraftError(f"unknown dataset format {fmt!r}; use one of: auto, {', '.join(IMPORT_FORMATS)}",
                             code="invalid_option", param="format")
    if not paths:
        raise RolecraftError("no dataset files given", code="invalid_option", param="files")
    report, samples, ids = ImportReport(out), [], set()
    for path in paths:
        found, skipped = _import_file(path, fmt, character=character, images=images or path.parent,
                                      out_dir=out.parent, observer=observer)
        for sample in found:
            if sample.id in ids:
                sample.id = f"{sample.id}#{sample.source}"
            ids.add(sample.id)
        samples += found
        report.per_file[str(path)] = len(found)
        report.skipped.update(skipped)
    report.samples = write_jsonl(out, samples)
    return report


def _import_file(path: Path, fmt: str, *, character: str | None, images: Path, out_dir: Path,
                 observer: Observer | None) -> tuple[list[TrainingSample], Counter]:
    if not path.is_file():
        raise RolecraftError(f"dataset not found: {path}", code="invalid_dataset", param="files")
    skipped: Counter = Counter()
    samples: list[TrainingSample] = []
    named = character
    for index, row in enumerate(read_rows(path, skipped)):
        if fmt == "auto":
            fmt = detect_format(row) or "auto"
        try:
            sample = _row_sample(row, index, fmt, path, default=named, images=images, out_dir=out_dir,
                                 observer=observer)
        except RowError as exc:
            skipped[str(exc)] += 1
            continue
        named = named or sample.character
        samples.append(sample)
    if not samples:
        why = reasons(skipped) or "the file holds no rows"
        raise RolecraftError(f"{path} holds no usable dialogues: {why}", code="invalid_dataset", param="files")
    return samples, skipped


def _row_sample(row: Any, index: int, fmt: str, path: Path, *, default: str | None, images: Path, out_dir: Path,
                observer: Observer | None) -> TrainingSample:
    if fmt not in IMPORT_FORMATS:
        raise RowError("row is not in a known format" if fmt == "auto" else f"{fmt} rows are not dialogues to train on")
    talk = row_conversation(row, fmt, images=images, default=default)
    if talk.character == "Assistant" and default is None:
        raise RowError("no character name (give --character)")
    turns = _without_trailing_user(talk.turns)
    if not any(role == "assistant" and text for role, text in turns):
        raise RowError("no character reply")
    messages = [Turn(role=role, content=text) for role, text in turns]  # type: ignore[arg-type]
    if talk.image is not None:
        first_user = next((t for t in messages if t.role == "user"), None)
        if first_user is None:
            raise RowError("picture but no user turn to show it")
        first_user.images = [Path(os.path.relpath(talk.image.resolve(), out_dir.resolve())).as_posix()]
        if observer is not None:
            try:
                first_user.observation = observer(talk.image, talk.character, "User")
            except RolecraftError as exc:
                raise RowError("unreadable image") from exc
    return TrainingSample(id=f"{path.stem}:{row.get('id', index)}", character=talk.character, profile=talk.profile,
                          source=f"{path.name}#{index}", messages=messages)


def _without_trailing_user(turns: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop the user turns after the last reply: nothing answers them, so there is nothing to learn."""
    kept = list(turns)
    while kept and kept[-1][0] == "user":
        kept.pop()
    return kept


# character cards -----------------------------------------------------------------------------------------------


def card_samples(character: Character, char_id: str, *, user: str = "User") -> list[TrainingSample]:
    """The card's example dialogue (one sample per <START> block) and greetings, macros expanded."""
    samples = []
    for i, turns in enumerate(example_dialogues(character)):
        messages = [Turn(role=role, content=expand_macros(text, character.name, user))  # type: ignore[arg-type]
                    for role, text in _without_trailing_user(turns)]
        if any(m.role == "assistant" and m.content.strip() for m in messages):
            samples.append(TrainingSample(id=f"{char_id}:example:{i}", character=char_id, user=user,
                                          source="card example dialogue", messages=messages))
    for i, greeting in enumerate(character.greetings()):
        text = expand_macros(greeting.strip(), character.name, user)
        samples.append(TrainingSample(id=f"{char_id}:greeting:{i}", character=char_id, user=user,
                                      source="card greeting", messages=[Turn(role="assistant", content=text)]))
    if not samples:
        raise RolecraftError(f"character {char_id!r} has no example dialogue or greeting to learn from",
                             code="no_examples", param="character")
    return samples


def example_dialogues(character: Character) -> list[list[tuple[str, str]]]:
    """The turns of each <START> block: `{{char}}:`/`<BOT>:`/`Name:` lines are the character's,
    `{{user}}:`/`<USER>:` lines the user's; unprefixed lines continue the turn above."""
    speaker = re.compile(r"^\s*(?:\{\{\s*(char|user)\s*\}\}|<(bot|char|user)>|(" + re.escape(character.name)
                         + r"))\s*:\s?(.*)$", re.IGNORECASE)
    dialogues = []
    for block in re.split(r"<start>", character.mes_example, flags=re.IGNORECASE):
        turns: list[tuple[str, str]] = []
        for line in block.splitlines():
            match = speaker.match(line)
            if match:
                who = (match.group(1) or match.group(2) or "char").lower()
                turns.append(("user" if who == "user" else "assistant", match.group(4)))
            elif turns and line.strip():
                turns[-1] = (turns[-1][0], f"{turns[-1][1]}\n{line}")
        turns = [(role, text.strip()) for role, text in turns]
        if turns:
            dialogues.append(turns)
    return dialogues


# preparing splits ----------------------------------------------------------------------------------------------


@dataclass
class PrepareReport:
    """What `prepare` read, kept (per split), trimmed, renamed and dropped by reason."""

    train: Path
    eval: Path | None = None
    read: int = 0
    train_count: int = 0
    eval_count: int = 0
    trimmed: int = 0
    renamed: int = 0
    dropped: Counter = field(default_factory=Counter)


def estimate_tokens(sample: TrainingSample) -> int:
    """A cheap token estimate of a dialogue (profile and every turn's words and picture notes)."""
    text = sample.profile + "".join(t.content + (t.observation or "") for t in sample.messages)
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def prepare(inputs: Sequence[Path], out_dir: Path, *, eval_fraction: float = 0.1, seed: int = 0,
            max_tokens: int = 1024, min_reply_chars: int = 2) -> PrepareReport:
    """Merge sample files, clean them and write `out_dir`/train.jsonl and eval.jsonl (when it gets samples)."""
    if not 0 <= eval_fraction < 1:
        raise RolecraftError("--eval-fraction must be at least 0 and below 1", code="invalid_option",
                             param="eval_fraction")
    if max_tokens < 1 or min_reply_chars < 0:
        raise RolecraftError("--max-tokens must be positive and --min-reply-chars not negative",
                             code="invalid_option", param="max_tokens")
    report = PrepareReport(out_dir / "train.jsonl")
    kept: list[TrainingSample] = []
    texts: set[str] = set()
    ids: set[str] = set()
    for path in inputs:
        for sample in read_jsonl(path, TrainingSample):
            report.read += 1
            try:
                sample = _cleaned(sample, path.parent, out_dir, min_reply_chars, max_tokens, report)
            except RowError as exc:
                report.dropped[str(exc)] += 1
                continue
            if (text := fingerprint(sample)) in texts:
                report.dropped["duplicate dialogue"] += 1
                continue
            texts.add(text)
            if sample.id in ids:
                sample.id = _free_id(sample.id, ids)
                report.renamed += 1
            ids.add(sample.id)
            kept.append(sample)
    if not kept:
        raise RolecraftError(f"no sample is left to train on: {reasons(report.dropped)}", code="invalid_dataset",
                             param="data")
    train, held = split_samples(kept, eval_fraction=eval_fraction, seed=seed)
    report.train_count = write_jsonl(report.train, train)
    eval_path = out_dir / "eval.jsonl"
    if held:
        report.eval, report.eval_count = eval_path, write_jsonl(eval_path, held)
    else:
        eval_path.unlink(missing_ok=True)  # a split from an earlier run would not match this one
    return report


def _cleaned(sample: TrainingSample, source_dir: Path, out_dir: Path, min_reply_chars: int, max_tokens: int,
             report: PrepareReport) -> TrainingSample:
    """The sample with pictures relative to `out_dir`, cut before its first near-empty reply; RowError if unusable."""
    turns = [t.model_copy(update={"images": [_rebased(i, source_dir, out_dir) for i in t.images]})
             for t in sample.messages]
    bad = next((i for i, t in enumerate(turns) if t.role == "assistant" and len(t.content.strip()) < min_reply_chars),
               None)
    if bad is not None:
        turns = turns[:bad]
        while turns and turns[-1].role == "user":
            turns.pop()
        if not any(t.role == "assistant" for t in turns):
            raise RowError("near-empty reply")
        report.trimmed += 1
    cleaned = sample.model_copy(update={"messages": turns})
    if estimate_tokens(cleaned) > max_tokens:
        raise RowError("longer than --max-tokens (estimated)")
    return cleaned


def _rebased(image: str, source_dir: Path, out_dir: Path) -> str:
    path = Path(image) if Path(image).is_absolute() else source_dir / image
    if not path.is_file():
        raise RowError("missing image")
    return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()


def fingerprint(sample: TrainingSample) -> str:
    """The whole dialogue as normalised text (case and spacing ignored): equal means duplicate."""
    parts = [sample.character, sample.profile]
    for turn in sample.messages:
        parts += [turn.role, turn.content, turn.observation or "", *turn.images]
    return "\x1f".join(" ".join(p.casefold().split()) for p in parts)


def _free_id(base: str, taken: set[str]) -> str:
    n = 2
    while f"{base}#{n}" in taken:
        n += 1
    return f"{base}#{n}"


def split_position(sample_id: str, seed: int) -> float:
    """Where a dialogue id falls in [0, 1) for this seed; below the eval fraction means eval."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_samples(samples: Sequence[TrainingSample], *, eval_fraction: float, seed: int,
                  ) -> tuple[list[TrainingSample], list[TrainingSample]]:
    """(train, eval) by id hash, so a dialogue keeps its split as data is added. With two or more
    samples and a non-zero fraction, eval gets at least one and train keeps at least one."""
    where = [split_position(s.id, seed) for s in samples]
    held = [w < eval_fraction for w in where]
    order = sorted(range(len(samples)), key=where.__getitem__)
    if eval_fraction > 0 and len(samples) >= 2 and not any(held):
        held[order[0]] = True
    if samples and all(held):
        held[order[-1]] = False
    return ([s for s, h in zip(samples, held, strict=True) if not h],
            [s for s, h in zip(samples, held, strict=True) if h])
