"""LoRA adapters over the OpenAI API: `rolecraft serve` offers <home>/adapters as models (as vLLM offers
--lora-modules), and the openai_compat backend asks for a character's adapter by that name."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_helpers import Server, assert_openai_error, random_adapter

from rolecraft.backends import create_backend
from rolecraft.backends.base import SamplingParams
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.settings import Settings

QUESTION = [Message("user", "Name three colours.")]


@pytest.fixture(scope="module")
def pirate(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    (server.home / "adapters").mkdir(exist_ok=True)
    return random_adapter(tmp_path_factory.mktemp("peft") / "pirate", server.home / "adapters" / "pirate.gguf")


def _say(server: Server, model: str) -> str:
    answer = server.client().chat.completions.create(model=model, messages=[m.as_dict() for m in QUESTION],
                                                     max_tokens=8, temperature=0)
    return answer.choices[0].message.content


def test_installed_adapters_are_models(server: Server, pirate: Path) -> None:
    listed = {m["id"]: m for m in server.http().get("/v1/models").json()["data"]}
    assert listed["pirate"]["rolecraft"] == {"kind": "adapter", "name": "smollm2"}
    assert _say(server, "pirate") != _say(server, "smollm2")
    assert_openai_error(server.http().post("/v1/chat/completions", json={
        "model": "parrot", "messages": [{"role": "user", "content": "hi"}]}), 404, "model_not_found")


def test_openai_compat_asks_for_the_adapter_by_name(server: Server, pirate: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, backend="openai_compat", base_url=f"{server.url}/v1", model="smollm2",
                        api_key=server.keys["alice"])
    backend = create_backend(settings)

    def say(adapter: str | None) -> str:
        params = SamplingParams(max_tokens=8, temperature=0.0, adapter=adapter, repeat_penalty=1.1)
        return "".join(e.text for e in backend.stream(QUESTION, params))

    assert say(str(tmp_path / "adapters" / "pirate.gguf")) != say(None)
    with pytest.raises(RolecraftError, match="parrot"):
        say(str(tmp_path / "parrot.gguf"))


def test_a_teacher_behind_an_openai_compatible_server_synthesises_data(server: Server, tmp_path: Path) -> None:
    from rolecraft.conversation import Engine
    from rolecraft.training.synth import synthesize, teacher_settings

    local = Settings(home=tmp_path, temperature=0.7, max_tokens=24, long_term_memory=False)
    teacher = teacher_settings(local, backend="openai_compat", model="smollm2", base_url=f"{server.url}/v1")
    engine = Engine(teacher.model_copy(update={"api_key": server.keys["alice"]}))
    assert engine.backend.name == "openai_compat"
    report = synthesize(engine, "ember", n=2, turns=1, seed=3)
    assert report.samples and all(s.character == "ember" for s in report.samples)
    assert all(s.source == "synth:openai_compat:smollm2" for s in report.samples)
    engine.close()
