"""The Character: the seeds' attribute library plus a lorebook, independent of any card format.

Fields a card spec knows map to it directly; the richer attributes (appearance,
life story, relationships, speech style, catchphrases, voice, expressions) live
as first-class fields here and travel in cards under `extensions.rolecraft`.
Anything we do not understand is kept verbatim in `extensions` / `extra` so an
import → export round trip loses nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXTENSION_KEY = "rolecraft"


class LorebookEntry(BaseModel):
    """One world-info entry (Character Card V2/V3 `character_book.entries[]`)."""

    model_config = ConfigDict(extra="forbid")

    keys: list[str] = Field(default_factory=list)
    content: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    insertion_order: int = 100
    case_sensitive: bool | None = None
    use_regex: bool = False
    constant: bool | None = None
    name: str | None = None
    priority: int | None = None
    id: int | str | None = None
    comment: str | None = None
    selective: bool | None = None
    secondary_keys: list[str] = Field(default_factory=list)
    position: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="Unknown fields, kept verbatim.")


class Lorebook(BaseModel):
    """A character book / world info (`character_book`)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[LorebookEntry] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict, description="Unknown fields, kept verbatim.")


class Asset(BaseModel):
    """A V3 asset reference (`data.assets[]`): icon, emotion sprite, background, ..."""

    model_config = ConfigDict(extra="allow")

    type: str
    uri: str
    name: str = ""
    ext: str = ""


class Character(BaseModel):
    """A role-play character."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    nickname: str | None = None
    description: str = ""
    appearance: str = ""
    personality: str = ""
    background: str = Field("", description="Life story.")
    relationships: dict[str, str] = Field(default_factory=dict, description="Other person → relation to them.")
    speech_style: str = ""
    catchphrases: list[str] = Field(default_factory=list)
    scenario: str = ""
    first_mes: str = Field("", description="Greeting that opens a session.")
    alternate_greetings: list[str] = Field(default_factory=list)
    group_only_greetings: list[str] = Field(default_factory=list)
    mes_example: str = Field("", description="Example dialogue, blocks separated by <START>.")
    system_prompt: str = ""
    post_history_instructions: str = ""
    tags: list[str] = Field(default_factory=list)
    creator: str = ""
    character_version: str = ""
    creator_notes: str = ""
    voice: str | None = Field(None, description="TTS voice id for this character.")
    adapter: str | None = Field(
        None, description="LoRA adapter this character speaks through (a .gguf for llama_cpp, a PEFT folder for "
        "transformers); relative paths are resolved against <home>/adapters.")
    expressions: dict[str, str] = Field(default_factory=dict, description="Expression label → sprite asset URI.")
    character_book: Lorebook | None = None
    assets: list[Asset] = Field(default_factory=list)
    creation_date: int | None = None
    modification_date: int | None = None
    extensions: dict[str, Any] = Field(default_factory=dict, description="Card extensions other than ours.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Unknown card fields, kept verbatim.")
    card_extra: dict[str, Any] = Field(
        default_factory=dict, description="Unknown top-level card fields (beside `spec`/`data`), kept verbatim."
    )
    avatar: bytes | None = Field(None, exclude=True, description="Avatar image bytes (PNG).")
    asset_files: dict[str, bytes] = Field(
        default_factory=dict, exclude=True, description="Files packed with the card (CHARX member path → bytes)."
    )
    spec: str = Field("chara_card_v3", description="The spec this character was read from.")

    def greetings(self) -> list[str]:
        """Every greeting that can open a session, main one first."""
        return [g for g in [self.first_mes, *self.alternate_greetings] if g.strip()]
