"""Session and message shapes for the native REST API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rolecraft.server.media import image_from_url
from rolecraft.server.samplers import SamplerFields, read_samplers
from rolecraft.server.text_input import check_text
from rolecraft.store.records import SessionInfo, StoredMessage

# Letters, digits, _ and - (any non-ASCII letter too: ids like 林月), in a form that reads the same to
# Python, pydantic (Rust) and JSON Schema (ECMA-262) regex engines.
CHAR_ID = r"^(?:[A-Za-z0-9_-]|[^\x00-\x7F]){1,80}$"
SESSION_ID = r"^[A-Za-z0-9_-]{1,32}$"
MAX_ID = 2**31 - 1  # message ids are 32-bit integers in the database
TokenId = Annotated[str, Field(pattern=r"^[0-9]{1,9}$")]
Bias = Annotated[float, Field(ge=-100, le=100)]


def utc(moment: datetime) -> datetime:
    """Stored times are naive UTC; the API states the zone (RFC 3339)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionCreate(_Strict):
    character: str = Field(pattern=CHAR_ID, description="Character id (GET /v1/characters).")
    greeting: int = Field(0, ge=0, le=1000, description="Which greeting opens the session (0 = the main one).")
    user_name: str | None = Field(None, min_length=1, max_length=64, description="Your name in the story.")
    persona: str | None = Field(None, max_length=8000, description="A short description of you.")


class Sampling(SamplerFields):
    """Per-request sampling, as in chat completions (unset: the server's settings); the one sampler
    reader every endpoint shares maps them onto SamplingParams."""

    seed: int | None = Field(None, ge=-(2**53), le=2**53)
    logit_bias: dict[TokenId, Bias] | None = Field(None, max_length=1024,
                                                   description="Token id → bias (-100 bans the token).")
    stream: bool = Field(False, description="Stream server-sent events: {delta}, then {turn}, then [DONE].")

    def overrides(self) -> dict[str, Any]:
        fields = self.model_dump(include=set(Sampling.model_fields) - {"stream"}, exclude_none=True)
        return read_samplers(fields).overrides


class TurnCreate(Sampling):
    content: str = Field("", max_length=100_000, description="Your message (may be empty with a picture).")
    images: list[str] = Field(default_factory=list, max_length=8,
                              description="Pictures you show, as data: URLs (data:image/png;base64,...).")

    @field_validator("content")
    @classmethod
    def _valid_text(cls, value: str) -> str:
        return check_text(value, "content")

    def image_bytes(self) -> list[bytes]:
        """The pictures' bytes, each checked to be a readable image (a 400 naming the one that is not)."""
        from rolecraft.perception import read_media

        for i, url in enumerate(self.images):
            image_from_url(url, param=f"images[{i}]")
        return [read_media(url, allow_files=False).data for url in self.images]


class EditRequest(Sampling):
    role: Literal["user", "assistant"] = Field(
        description="user: replace your last message (a new branch with a new reply); "
        "assistant: replace the character's last reply with this text (kept as a swipe)."
    )
    content: str = Field(min_length=1, max_length=100_000)


class BranchRequest(_Strict):
    message_id: int = Field(ge=1, le=MAX_ID, description="Continue the conversation from this message.")


class SwipeRequest(_Strict):
    index: int = Field(ge=0, le=10_000, description="Which alternative of the last message to show.")


class MessageOut(BaseModel):
    id: int
    parent_id: int | None
    depth: int
    role: str
    name: str
    content: str
    created_at: datetime
    meta: dict[str, Any]

    @classmethod
    def of(cls, m: StoredMessage) -> MessageOut:
        return cls(id=m.id, parent_id=m.parent_id, depth=m.depth, role=m.role, name=m.name, content=m.content,
                   created_at=utc(m.created_at), meta=m.meta)


class SessionOut(BaseModel):
    id: str
    character_id: str
    user_name: str
    persona: str
    head_id: int | None
    created_at: datetime
    updated_at: datetime
    message_count: int

    @classmethod
    def of(cls, s: SessionInfo) -> SessionOut:
        return cls(id=s.id, character_id=s.character_id, user_name=s.user_name, persona=s.persona,
                   head_id=s.head_id, created_at=utc(s.created_at), updated_at=utc(s.updated_at),
                   message_count=s.message_count)


class SessionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SessionOut]


class History(BaseModel):
    """The current path: root greeting → head."""

    session: SessionOut
    messages: list[MessageOut]


class Tree(History):
    """Every message of the session (all branches and swipes); follow parent_id to rebuild the tree."""


class Swipes(BaseModel):
    """The alternatives of the last message; `selected` is the one on the current path."""

    swipes: list[MessageOut]
    selected: int | None


class TurnOut(BaseModel):
    """What a turn stored: your message (unless it was a regeneration) and the reply."""

    session: SessionOut
    messages: list[MessageOut]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class Deleted(BaseModel):
    id: str
    deleted: bool = True


class AttachLorebook(BaseModel):
    """Which library lorebook to attach."""

    model_config = ConfigDict(extra="forbid")

    lorebook_id: str = Field(pattern=CHAR_ID)
