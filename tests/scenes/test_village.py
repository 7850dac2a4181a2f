"""The example game's scripted scene, end to end on the bundled model through the scene API (in-process app).

Actions validate against what was declared for the character who took them, the game's refusal reaches the
guard's next prompt, and what the player told Ember while Mara was away never reaches Mara's prompts.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import jsonschema
import pytest
from fastapi.testclient import TestClient

from rolecraft.backends import create_backend
from rolecraft.backends.base import SamplingParams, StreamEvent
from rolecraft.messages import Message
from rolecraft.server.app import create_app
from rolecraft.server.config import server_settings
from rolecraft.settings import Settings

pytestmark = pytest.mark.slow
PLAY = Path(__file__).resolve().parents[2] / "examples" / "village" / "play.py"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "scenes"


def _play_module():
    spec = importlib.util.spec_from_file_location("village_play", PLAY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Prompts:
    """The real llama.cpp backend, keeping the text of every prompt it answers."""

    def __init__(self, real: object) -> None:
        self._real = real
        self.seen: list[tuple[str, str]] = []  # (the speaker's definition, whole prompt) of each spoken reply

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        if params.json_schema is None:
            self.seen.append((messages[0].content, "\n".join(m.content for m in messages)))
        yield from self._real.stream(messages, params)


def test_the_village_plays_through_with_valid_actions_and_witnessed_only_knowledge(settings: Settings) -> None:
    play = _play_module()
    quiet = settings.model_copy(update={"state_tracking": "off", "max_tokens": 10, "n_ctx": 2048,
                                        "action_max_tokens": 40})
    backend = Prompts(create_backend(quiet))
    lines: list[str] = []
    app = create_app(quiet, server_settings(quiet, require_api_key=False), backend=backend)  # type: ignore[arg-type]
    with TestClient(app) as http:
        game = play.scripted(play.Game(http, say=lines.append, live=False), max_tokens=10)
        scene = http.get(f"/v1/scenes/{game.scene}").json()
        mara_saw = http.get(f"/v1/scenes/{game.scene}/witnessed/mara").json()["messages"]
        ember_saw = http.get(f"/v1/scenes/{game.scene}/witnessed/ember").json()["messages"]
    backend._real.close()

    speakers = [r["character_id"] for r in game.replies]
    assert {"ember", "linyue", "mara"} <= set(speakers), speakers
    declared = {m["id"]: m["actions"] for m in scene["scene"]["members"]}
    schemas = {a["name"]: a["parameters"] for a in scene["scene"]["actions"]}
    schemas["open_gate"] = {"type": "object", "required": ["gate"],
                            "properties": {"gate": {"type": "string", "enum": ["north", "south"]}}}
    for reply in game.replies:
        assert reply["text"].strip()
        for action in reply["actions"]:
            assert action["name"] in declared[reply["character_id"]]
            jsonschema.validate(action["arguments"], schemas[action["name"]])
    assert "open_gate" in declared["mara"] and "open_gate" not in declared["ember"]

    ring = "mayor's ring"
    assert any(ring in m["content"] for m in ember_saw) and not any(ring in m["content"] for m in mara_saw)
    mara_prompts = [prompt for definition, prompt in backend.seen if "gate guard of Thornbury" in definition]
    assert mara_prompts and not any(ring in p for p in mara_prompts)
    assert any("林月，你好" in p for definition, p in backend.seen if "月华堂" in definition)
    assert any("Time: night" in p and "wolves_sighted yes" in p for _, p in backend.seen)
    assert any(line.startswith("— state now:") for line in lines)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "village-timeline.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    events = [m for m in scene["messages"] if m["role"] == "event"]
    assert any("wolf howls" in m["content"] and m["meta"].get("image_notes") for m in events)
    if game.refused:  # the guard tried the frozen gate: her next prompt says it failed
        assert any("failed: the north gate is frozen shut" in p for _, p in mara_prompts[-1:])
