"""The one training format every importer writes and every trainer reads (JSON Lines).

A `TrainingSample` is a character (a library card id, or a name plus a free-text
profile for datasets that carry their own) and a dialogue in which the
assistant turns are that character's. Pictures stay as files next to the data;
the renderer turns them into text observations for text-only models or native
image parts for multimodal ones. A `PreferencePair` is a prompt dialogue ending
with the user's turn plus a chosen (in-character) and a rejected reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rolecraft.errors import RolecraftError
from rolecraft.files import atomic_write


class Turn(BaseModel):
    """One message of a training dialogue."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str
    images: list[str] = Field(default_factory=list, description="Picture files, relative to the data file.")
    observation: str | None = Field(None, description="What perception saw in the pictures, for text-only models.")
    perceived: list[dict] = Field(default_factory=list, description="The pictures' observations as perception "
                                  "stores them (message meta 'images'), so the prompt gets the reminder chat adds.")


class _Dialogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    character: str = Field(min_length=1, description="Library character id, or the character's name.")
    profile: str = Field("", description="Character description when the character is not a library card.")
    user: str = Field("User", min_length=1)
    source: str = ""
    remembered: list[str] = Field(default_factory=list, description="Old exchanges long-term memory recalls for "
                                  "the last reply (the '[{{char}} remembers]' block of a stored session).")


class TrainingSample(_Dialogue):
    """A dialogue whose assistant turns are the character's (the loss is taken on those)."""

    messages: list[Turn]
    learn: Literal["all", "last"] = Field("all", description="Which character turns carry the loss: every one, "
                                          "or only the last (earlier ones are scripted context).")

    @field_validator("messages")
    @classmethod
    def _has_reply(cls, turns: list[Turn]) -> list[Turn]:
        if not any(t.role == "assistant" and t.content.strip() for t in turns):
            raise ValueError("the dialogue has no non-empty assistant (character) turn to learn from")
        return turns


class PreferencePair(_Dialogue):
    """A prompt dialogue ending with the user's turn, a preferred reply and a worse one."""

    messages: list[Turn]
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, turns: list[Turn]) -> list[Turn]:
        if not turns or turns[-1].role != "user":
            raise ValueError("the prompt dialogue must end with the user's turn")
        return turns


Row = TypeVar("Row", TrainingSample, PreferencePair)


def read_jsonl(path: Path, kind: type[Row]) -> list[Row]:
    """Every row of a training file; the first bad row stops with its line number and reason."""
    if not path.is_file():
        raise RolecraftError(f"training data not found: {path}", code="invalid_dataset", param="data")
    try:
        rows = list(_parse(path, kind))
    except UnicodeDecodeError as exc:
        raise RolecraftError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}", code="invalid_dataset",
                             param="data") from exc
    if not rows:
        raise RolecraftError(f"{path} holds no training samples", code="invalid_dataset", param="data")
    return rows


def _parse(path: Path, kind: type[Row]) -> Iterator[Row]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield kind.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                reason = _why(exc.errors()[0]) if isinstance(exc, ValidationError) else exc.msg
                raise RolecraftError(f"{path} line {number} is not a {kind.__name__}: {reason}",
                                     code="invalid_dataset", param="data") from exc


def _why(error: dict) -> str:
    where = ".".join(map(str, error["loc"]))
    return f"{where}: {error['msg']}" if where else error["msg"]


def write_jsonl(path: Path, rows: Iterable[BaseModel]) -> int:
    """Write rows atomically (temporary file, then rename): a crash never leaves half a file."""
    count = 0
    try:
        with atomic_write(path, "w") as handle:
            for row in rows:
                handle.write(row.model_dump_json(exclude_defaults=True) + "\n")
                count += 1
    except OSError as exc:
        raise RolecraftError(f"cannot write {path}: {exc.strerror or exc}", code="write_failed", param="out") from exc
    return count
