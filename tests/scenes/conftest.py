"""Scene test helpers: an in-process app on a prompt-recording fake backend (protocol tests), keys for two callers."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from fakes import WordBackend
from rolecraft.backends.base import SamplingParams, StreamEvent
from rolecraft.messages import Message
from rolecraft.server.app import create_app
from rolecraft.server.config import server_settings
from rolecraft.settings import Settings
from rolecraft.store import Store
from rolecraft.store.keys import create_key

GIVE = {"type": "function", "function": {"name": "give_item", "description": "Hand the player an item.",
                                         "parameters": {"type": "object", "required": ["item"],
                                                        "properties": {"item": {"type": "string",
                                                                                "enum": ["bread", "key"]}}}}}


class SceneBackend(WordBackend):
    """Replies with a fixed line; an action choice (a JSON schema asked for) answers `choice` instead.
    Records every prompt and whether a schema constrained it."""

    def __init__(self, n_ctx: int = 4000) -> None:
        super().__init__(n_ctx, reply="I see.")
        self.choice: dict = {"actions": []}
        self.schemas: list[dict | None] = []

    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        self.schemas.append(params.json_schema)
        if params.json_schema is None:
            yield from super().stream(messages, params)
            return
        self.prompts.append(list(messages))
        yield StreamEvent(text=json.dumps(self.choice))
        yield StreamEvent(finish_reason="stop", prompt_tokens=self.count_tokens(messages), completion_tokens=5)

    def reply_prompts(self) -> list[str]:
        """The text of every prompt for a spoken reply (not the action choices)."""
        return ["\n".join(m.content for m in p) for p, s in zip(self.prompts, self.schemas, strict=True) if s is None]


@dataclass
class App:
    http: TestClient
    backend: SceneBackend
    keys: dict[str, str] = field(default_factory=dict)

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    quiet = settings.model_copy(update={"state_tracking": "off", "expressions": "off", "user_name": "Kai"})
    store = Store(quiet.db_url)
    keys = {who: create_key(store, who)[1] for who in ("alice", "bob")}
    store.close()
    backend = SceneBackend()
    application = create_app(quiet, server_settings(quiet, require_api_key=True), backend=backend)
    with TestClient(application) as client:
        yield App(client, backend, keys)
