"""How well a state tracker reads an exchange: labelled turns and a per-field score.

`data/state_turns.jsonl` holds exchanges (English and Chinese, written for
rolecraft) with what a reader should take from each: the user's name, facts,
likes and dislikes, the character's mood, the place, the direction of trust
and new open threads. A field that a turn does not label must stay unchanged,
so a tracker that invents is marked down as much as one that misses.
Keywords match case-insensitively as substrings of what the tracker added; an
entry may list alternatives (a stem, a synonym, a translation).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolecraft.backends.base import Backend
from rolecraft.errors import RolecraftError
from rolecraft.evaluation.stats import Interval, bootstrap, mean_interval
from rolecraft.memory.state import DialogueState
from rolecraft.memory.tracker import update_state

FIELDS = ("name", "facts", "likes", "mood", "place", "trust", "threads")
Keywords = list[str | list[str]]


class Expected(BaseModel):
    """What the exchange says; everything left out must not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | list[str] | None = None
    facts: Keywords = Field(default_factory=list)
    likes: Keywords = Field(default_factory=list)
    dislikes: Keywords = Field(default_factory=list)
    mood: list[str] = Field(default_factory=list, description="Any of these in the new mood.")
    place: list[str] = Field(default_factory=list, description="Any of these in the new place.")
    trust: int = Field(0, ge=-1, le=1, description="Direction of the trust change.")
    threads: Keywords = Field(default_factory=list)


class StateTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    lang: str = "en"
    character: str
    user: str
    user_text: str = Field(min_length=1)
    reply: str = Field(min_length=1)
    expect: Expected = Field(default_factory=Expected)


def load_turns(path: Path | None = None) -> list[StateTurn]:
    """The labelled turns: the built-in set, or a JSONL file of the same shape."""
    if path is None:
        text = resources.files("rolecraft.evaluation").joinpath("data/state_turns.jsonl").read_text(encoding="utf-8")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RolecraftError(f"cannot read {path}: {exc}", code="invalid_dataset", param="dataset") from exc
    turns = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            turns.append(StateTurn.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise RolecraftError(f"state turns line {number}: {exc}", code="invalid_dataset",
                                 param="dataset") from exc
    return turns


def _options(entry: str | list[str]) -> list[str]:
    return [entry] if isinstance(entry, str) else entry


def _has(texts: list[str], entry: str | list[str]) -> bool:
    joined = " | ".join(texts).casefold()
    return any(option.casefold() in joined for option in _options(entry))


def _added(before: list[str], after: list[str]) -> list[str]:
    seen = {v.casefold() for v in before}
    return [v for v in after if v.casefold() not in seen]


def _listed(expected: Keywords, added: list[str]) -> bool:
    return all(_has(added, e) for e in expected) if expected else not added


def labelled_fields(want: Expected) -> tuple[str, ...]:
    """The fields a turn says something about (the rest must stay unchanged)."""
    said = {"name": bool(want.name), "facts": bool(want.facts), "likes": bool(want.likes or want.dislikes),
            "mood": bool(want.mood), "place": bool(want.place), "trust": bool(want.trust),
            "threads": bool(want.threads)}
    return tuple(f for f in FIELDS if said[f])


def _ratio(groups: list[list[float]]) -> float:
    cells = [v for group in groups for v in group]
    return sum(cells) / len(cells) if cells else 0.0


def score(turn: StateTurn, before: DialogueState, after: DialogueState) -> dict[str, Any]:
    """Per field: did the tracker take exactly what the exchange says (and nothing it does not)?
    'labelled' names the fields the turn says something about."""
    want = turn.expect
    facts = _added(before.user.facts, after.user.facts)
    likes = _added(before.user.likes, after.user.likes)
    dislikes = _added(before.user.dislikes, after.user.dislikes)
    grounded = [*want.likes, *want.dislikes, *([want.name] if want.name else [])]
    invented = [f for f in facts if not any(_has([f], e) for e in [*want.facts, *grounded])]
    name = after.user.name if after.user.name != before.user.name else None
    mood = after.mood if after.mood != before.mood else None
    place = after.scene.place if after.scene.place != before.scene.place else None
    change = after.relationship.trust - before.relationship.trust
    return {
        "labelled": labelled_fields(want),
        "name": (name is not None and _has([name], want.name)) if want.name else name is None,
        "facts": all(_has(facts, e) for e in want.facts) and not invented,
        "likes": _listed(want.likes, likes) and _listed(want.dislikes, dislikes),
        "mood": (mood is not None and _has([mood], want.mood)) if want.mood else mood is None,
        "place": (place is not None and _has([place], want.place)) if want.place else place is None,
        "trust": (change > 0) - (change < 0) == want.trust,
        "threads": _listed(want.threads, _added(before.threads, after.threads)),
    }


def accuracy(rows: list[dict[str, Any]], *, rounds: int = 1000, seed: int = 0) -> dict[str, Interval | None]:
    """Per field and overall (mean over every turn × field), with bootstrap intervals over turns,
    'labelled': over the cells a turn labels only (what changed), and 'exact': turns with every field right."""
    result = {f: mean_interval([float(r[f]) for r in rows], rounds=rounds, seed=seed) for f in FIELDS}
    per_turn = [sum(r[f] for f in FIELDS) / len(FIELDS) for r in rows]  # same fields per turn: mean of means
    result["overall"] = mean_interval(per_turn, rounds=rounds, seed=seed)
    labelled = [[float(r[f]) for f in r.get("labelled", ())] for r in rows]
    result["labelled"] = bootstrap(len(rows), lambda idx: _ratio([labelled[i] for i in idx]), rounds=rounds,
                                   seed=seed) if any(labelled) else None
    result["exact"] = mean_interval([float(all(r[f] for f in FIELDS)) for r in rows], rounds=rounds, seed=seed)
    return result


def track_turn(mode: str, backend: Backend | None, turn: StateTurn) -> tuple[DialogueState, DialogueState]:
    """The state before (empty) and after the tracker reads `turn` under `state_tracking` = mode."""
    before = DialogueState()
    return before, update_state(mode, backend, before, turn.user, turn.character, turn.user_text, turn.reply)
