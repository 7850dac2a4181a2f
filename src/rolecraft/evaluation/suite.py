"""Evaluation suites: the characters, prompts, facts, photos and references a run uses.

The built-in suite (data/builtin.json, written for rolecraft) runs offline on
the bundled sample characters. A suite is plain JSON validated by the models
below, so users can write their own; dataset files (datasets.py) add samples on top.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolecraft.errors import RolecraftError
from rolecraft.evaluation.state_accuracy import StateTurn

BUILTIN = "builtin"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Exchange(_Strict):
    """A scripted user line and the character's scripted answer."""

    user: str = Field(min_length=1)
    assistant: str = Field(min_length=1)


class Fact(_Strict):
    """A fact about the user, planted early and asked about later."""

    id: str
    plant: str = Field(min_length=1)
    ack: str = Field(min_length=1, description="The character's scripted answer to the plant.")
    question: str = Field(min_length=1)
    answers: list[str] = Field(min_length=1, description="Any of these in a reply counts as recalled.")


class FactRecall(_Strict):
    characters: list[str] = Field(default_factory=list)
    depths: list[int] = Field(default_factory=lambda: [0, 4, 8])
    n_ctx: int | None = Field(None, ge=256, description="Context for this probe, smaller than the history.")
    facts: list[Fact] = Field(default_factory=list)
    filler: list[Exchange] = Field(default_factory=list)


class CoherenceItem(_Strict):
    id: str
    character: str
    history: list[Exchange] = Field(min_length=1)
    probe: str = Field(min_length=1)
    contradictions: list[str] = Field(default_factory=list, description="Phrases that would contradict history.")


class ReferenceItem(_Strict):
    id: str
    character: str
    prompt: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    history: list[Exchange] = Field(default_factory=list)


class Photo(_Strict):
    """A real photo shipped inside a Python package, and concepts a reply about it should mention."""

    id: str
    package: str
    path: str
    concepts: list[str] = Field(min_length=1)


class LabelledLine(_Strict):
    text: str = Field(min_length=1)
    label: str = Field(min_length=1)


class Suite(_Strict):
    """Everything a run asks; every section is optional."""

    name: str
    description: str = ""
    characters: list[str] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list, description="Asked to every character.")
    ooc_prompts: list[str] = Field(default_factory=list, description="Prompts that tempt a character out of role.")
    session_prompts: list[str] = Field(default_factory=list, description="User lines sent one after another in "
                                       "one session per character (repetition over a session).")
    lexicon: dict[str, list[str]] = Field(default_factory=dict, description="Character id → signature words.")
    fact_recall: FactRecall = Field(default_factory=FactRecall)
    coherence: list[CoherenceItem] = Field(default_factory=list)
    references: list[ReferenceItem] = Field(default_factory=list)
    photo_prompt: str = "I brought a picture to show you. What do you see in it?"
    photo_characters: list[str] = Field(default_factory=list, description="Who is shown the photos (default: "
                                        "the first character).")
    photos: list[Photo] = Field(default_factory=list)
    expressions: list[LabelledLine] = Field(default_factory=list)
    state_turns: list[StateTurn] = Field(default_factory=list, description="Labelled exchanges for the "
                                         "state-tracking probe (default: data/state_turns.jsonl).")

    def fingerprint(self) -> str:
        """A short hash of the suite's content."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def load_suite(spec: str | Path = BUILTIN) -> Suite:
    """The built-in suite by name, or a suite JSON file."""
    if str(spec) == BUILTIN:
        text = resources.files("rolecraft.evaluation").joinpath("data/builtin.json").read_text(encoding="utf-8")
        source = "the built-in suite"
    else:
        path = Path(spec)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RolecraftError(f"cannot read suite {path}: {exc}", code="invalid_suite", param="suite") from exc
        source = str(path)
    try:
        return Suite.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'suite'}: {e['msg']}" for e in exc.errors()[:5])
        raise RolecraftError(f"invalid suite {source}: {problems}", code="invalid_suite", param="suite") from exc
