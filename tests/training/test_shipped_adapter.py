"""The LoRA adapter shipped with rolecraft ('grounded') resolves by name and steers the bundled model."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolecraft.backends import create_backend
from rolecraft.backends.adapters import adapter_for, shipped_adapter
from rolecraft.backends.base import SamplingParams
from rolecraft.characters.model import Character
from rolecraft.messages import Message
from rolecraft.settings import Settings

SHIPPED = shipped_adapter("grounded")
pytestmark = pytest.mark.skipif(SHIPPED is None, reason="the grounded adapter is not shipped in this build")


def test_the_name_resolves_to_the_shipped_file_unless_one_is_installed(tmp_path: Path) -> None:
    ember = Character(name="Ember")
    assert adapter_for(Settings(home=tmp_path, adapter="grounded"), ember) == str(SHIPPED)
    mine = tmp_path / "adapters" / "grounded"
    mine.mkdir(parents=True)
    (mine / "adapter_config.json").write_text("{}")
    assert adapter_for(Settings(home=tmp_path, adapter="grounded"), ember) == str(mine)
    assert shipped_adapter("../grounded") is None and shipped_adapter("nothing-like-this") is None


def test_it_loads_through_llama_cpp_and_changes_the_reply() -> None:
    backend = create_backend(Settings(n_threads=1, n_ctx=512))
    messages = [Message("system", "You are Ember, a blacksmith."),
                Message("user", "[User shows Ember a picture. Ember sees a lantern, in yellow.]\nWhat is this?")]

    def reply(adapter: str | None) -> str:
        params = SamplingParams(max_tokens=12, temperature=0.0, seed=1, adapter=adapter)
        return "".join(event.text for event in backend.stream(messages, params))

    try:
        base, tuned = reply(None), reply(str(SHIPPED))
        assert tuned.strip() and tuned != base
        assert reply(None) == base  # switching back per request restores the base model
    finally:
        backend.close()
