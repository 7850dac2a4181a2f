"""Dataset loaders: MMRole JSON, ShareGPT, OpenAI-messages JSONL, CharacterEval JSONL + profiles.

Every format becomes a list of `DialogueSample`s: a character (name + profile),
the conversation so far, the user's message to answer and, when the data has
one, the reference reply. Rows that cannot be used (malformed JSON, no turns,
nothing to answer, a missing image, an unknown role) are skipped and counted
by reason, so one bad row never stops a run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolecraft.errors import RolecraftError

FORMATS = ("mmrole", "sharegpt", "openai", "charactereval")
USER_SPEAKERS = {"human", "user"}
ASSISTANT_SPEAKERS = {"gpt", "assistant", "chatgpt", "bot", "model"}


@dataclass(frozen=True)
class DialogueSample:
    """One reply to produce: the conversation so far, the message to answer, and maybe a reference."""

    id: str
    source: str
    character: str
    profile: str
    history: tuple[tuple[str, str], ...]
    user: str
    reference: str | None = None
    image: Path | None = None
    other: str = "the user"


@dataclass
class Dataset:
    """The usable samples of one file, and what was skipped and why."""

    name: str
    format: str
    samples: list[DialogueSample] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


class RowError(ValueError):
    """A row that cannot be used; its message is the counted reason."""


def read_rows(path: Path, skipped: Counter) -> Iterator[Any]:
    """Rows of a JSON array file or a JSONL file (malformed lines are counted and skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RolecraftError(f"cannot read dataset {path}: {exc}", code="invalid_dataset", param="dataset") from exc
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, list):
        yield from whole
        return
    if isinstance(whole, dict):
        yield whole
        return
    for line in text.splitlines():
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                skipped["malformed JSON line"] += 1


def detect_format(row: Any) -> str | None:
    """Which format a row looks like, or None."""
    if not isinstance(row, dict):
        return None
    if isinstance(row.get("messages"), list):
        return "openai"
    if "context" in row and "role" in row:
        return "charactereval"
    turns = row.get("conversations")
    if isinstance(turns, list):
        named = "role" in row or any(isinstance(t, dict) and "role" in t for t in turns)
        return "mmrole" if named else "sharegpt"
    return None


def _text(value: Any) -> str:
    """Text of a message value: a string, or the text parts of an OpenAI content list."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return "\n".join(p.get("text", "") for p in value if isinstance(p, dict) and p.get("type") == "text").strip()
    raise RowError("turn without text")


def _image_part(value: Any) -> str | None:
    if isinstance(value, list):
        for part in value:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = part.get("image_url")
                return url.get("url") if isinstance(url, dict) else url
    return None


def _split(turns: list[tuple[str, str]], turn_mode: str) -> list[tuple[tuple, str, str | None]]:
    """(history, user, reference) triples: each assistant turn answering a user turn, or a trailing user turn."""
    points = []
    for i, (role, _) in enumerate(turns):
        if role == "assistant" and i > 0 and turns[i - 1][0] == "user":
            points.append((tuple(turns[: i - 1]), turns[i - 1][1], turns[i][1]))
    if turns and turns[-1][0] == "user":
        points.append((tuple(turns[:-1]), turns[-1][1], None))
    points = [p for p in points if p[1]]
    if not points:
        raise RowError("no user message to answer")
    return points if turn_mode == "all" else points[-1:]


def _mmrole_character(row: dict, raw: list) -> str | None:
    named = [t.get("role") for t in raw if isinstance(t, dict) and t.get("role") and not t.get("from")]
    return row.get("role") or row.get("character") or (named[-1] if named else None)


def _turn(turn: Any, fmt: str, character: str | None) -> tuple[str, str, str | None]:
    """(user|assistant|system, text, the speaker's name if the turn names one)."""
    if not isinstance(turn, dict):
        raise RowError("turn is not an object")
    value = _text(turn.get("content") if fmt == "openai" else turn.get("value", turn.get("content")))
    named = turn.get("role") if fmt == "mmrole" and not turn.get("from") else None
    if named:
        return ("assistant", value, named) if named == character else ("user", f"{named}: {value}", named)
    speaker = str(turn.get("role") if fmt == "openai" else turn.get("from") or turn.get("role") or "").casefold()
    if speaker == "system":
        return "system", value, None
    if speaker in USER_SPEAKERS:
        return "user", value, None
    if speaker in ASSISTANT_SPEAKERS:
        return "assistant", value, turn.get("name")
    raise RowError("unknown speaker")


def _conversation_turns(row: dict, fmt: str, default: str | None) -> tuple[list[tuple[str, str]], str, str]:
    """Turns as (user|assistant, text), the character's name and the system/profile text."""
    raw = row.get("messages") if fmt == "openai" else row.get("conversations")
    if not isinstance(raw, list) or not raw:
        raise RowError("no conversation turns")
    character = _mmrole_character(row, raw) if fmt == "mmrole" else row.get("character") or row.get("name")
    character = character or default
    turns, system = [], [str(row.get("system") or "")]
    for raw_turn in raw:
        role, value, name = _turn(raw_turn, fmt, character)
        if role == "system":
            system.append(value)
        else:
            character = character or (name if role == "assistant" else None)
            turns.append((role, value))
    return turns, str(character or "Assistant"), "\n\n".join(s for s in system if s)


def _row_image(row: dict, fmt: str, images: Path) -> Path | None:
    ref = row.get("image")
    if fmt == "openai":
        ref = next((u for m in row["messages"] if isinstance(m, dict) for u in [_image_part(m.get("content"))] if u),
                   None)
    if not ref:
        return None
    if not isinstance(ref, str) or ref.startswith(("http://", "https://", "data:")):
        raise RowError("image is not a local file")
    path = Path(ref) if Path(ref).is_absolute() else images / ref
    if not path.is_file():
        raise RowError("missing image")
    return path


def _profile_text(profile: Any) -> str:
    if isinstance(profile, dict):
        return "\n".join(f"{k}: {v}" for k, v in profile.items())
    return str(profile)


def _charactereval_turns(row: dict, profiles: dict) -> tuple[list[tuple[str, str]], str, str]:
    role, context = row.get("role"), row.get("context")
    if not isinstance(role, str) or not isinstance(context, str):
        raise RowError("role or context is not text")
    if role not in profiles:
        raise RowError("role missing from profiles")
    turns = []
    for line in filter(str.strip, context.split("\n")):
        speaker, sep, said = line.replace("：", ":", 1).partition(":")
        if not sep:
            raise RowError("context line without 'speaker：'")
        turns.append(("assistant", said.strip()) if speaker.strip() == role else ("user", line.strip()))
    if not turns or turns[-1][0] != "user":
        raise RowError("context ends with the character's own line")
    return turns, role, _profile_text(profiles[role])


@dataclass(frozen=True)
class Conversation:
    """One row as a whole dialogue: turns as (user|assistant, text), whose replies they are, and its picture."""

    turns: list[tuple[str, str]]
    character: str
    profile: str
    image: Path | None
    other: str


def row_conversation(row: Any, fmt: str, *, images: Path, default: str | None = None,
                     profiles: dict | None = None) -> Conversation:
    """A row of a known format as one whole dialogue; a `RowError` names why it cannot be used.
    `default` is the character for rows that name none ("Assistant" when that is None too)."""
    if not isinstance(row, dict):
        raise RowError("row is not a JSON object")
    if fmt == "charactereval":
        turns, character, profile = _charactereval_turns(row, profiles or {})
    else:
        turns, character, profile = _conversation_turns(row, fmt, default)
    return Conversation(turns, character, profile, _row_image(row, fmt, images),
                        str(row.get("other_role") or "the user"))


def _row_samples(row: Any, index: int, fmt: str, name: str, *, profiles: dict, images: Path, turn_mode: str,
                 default: str | None) -> list[DialogueSample]:
    talk = row_conversation(row, fmt, images=images, default=default, profiles=profiles)
    base = str(row.get("id", index))
    return [DialogueSample(f"{name}:{base}:{len(history)}", f"{name}#{index}", talk.character, talk.profile,
                           history, user, reference, talk.image, talk.other)
            for history, user, reference in _split(talk.turns, turn_mode)]


def _load_profiles(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        profiles = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RolecraftError(f"cannot read profiles {path}: {exc}", code="invalid_dataset", param="profiles") from exc
    if not isinstance(profiles, dict):
        raise RolecraftError(f"profiles {path} must be a JSON object: role name → profile", code="invalid_dataset",
                             param="profiles")
    return profiles


def load_dataset(path: Path, fmt: str = "auto", *, profiles: Path | None = None, images: Path | None = None,
                 limit: int | None = None, turns: str = "last") -> Dataset:
    """Load one dataset file. `turns="all"` makes every answered turn a sample, not just the last."""
    if fmt not in (*FORMATS, "auto"):
        raise RolecraftError(f"unknown dataset format {fmt!r}; use one of: auto, {', '.join(FORMATS)}",
                             code="invalid_option", param="format")
    if not path.is_file():
        raise RolecraftError(f"dataset not found: {path}", code="invalid_dataset", param="dataset")
    table = _load_profiles(profiles)
    if fmt == "charactereval" and not table:
        raise RolecraftError("CharacterEval needs --profiles character_profiles.json", code="invalid_option",
                             param="profiles")
    dataset, named = Dataset(path.stem, fmt), None
    for index, row in enumerate(read_rows(path, dataset.skipped)):
        if dataset.format == "auto":
            dataset.format = detect_format(row) or "auto"
        try:
            if dataset.format == "auto":
                raise RowError("row is not in a known format")
            found = _row_samples(row, index, dataset.format, path.stem, profiles=table, images=images or path.parent,
                                 turn_mode=turns, default=named)
            named = named or next((s.character for s in found if s.character != "Assistant"), None)
            dataset.samples += found
        except RowError as exc:
            dataset.skipped[str(exc)] += 1
        if limit is not None and len(dataset.samples) >= limit:
            dataset.samples = dataset.samples[:limit]
            break
    return dataset
