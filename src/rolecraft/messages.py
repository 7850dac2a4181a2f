"""Plain message values passed between the rooms (context builder → backend)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
# `Message.kind` of a text-completion prompt: the backend reads its content as is, with no chat template.
RAW_PROMPT = "raw_prompt"


@dataclass(frozen=True)
class Message:
    """One chat message as a backend sees it. `kind` tags where it came from, for prompt debugging."""

    role: Role
    content: str
    kind: str = field(default="", compare=False)
    # Images as data: URLs, for backends that read images natively (capabilities.images).
    images: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        """OpenAI-style {role, content} with text only."""
        return {"role": self.role, "content": self.content}

    def wire(self) -> dict[str, Any]:
        """OpenAI-style message; with images, content is a list of text and image_url parts."""
        if not self.images:
            return self.as_dict()
        parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}} for url in self.images]
        return {"role": self.role, "content": [*parts, {"type": "text", "text": self.content}]}


def raw_prompt(messages: Sequence[Message]) -> str | None:
    """The text of a raw (text-completion) prompt, or None for a chat conversation."""
    if len(messages) == 1 and messages[0].kind == RAW_PROMPT:
        return messages[0].content
    return None
