"""`preload`: the model a command will need is built on a thread while the command starts, and
`create_backend` with the same settings takes that one (or raises its load error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolecraft.backends import registry
from rolecraft.errors import RolecraftError
from rolecraft.settings import Settings

pytest.importorskip("llama_cpp")


def test_the_preloaded_model_is_the_one_created(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, n_threads=1)
    registry.preload(settings)
    assert registry._key(settings) in registry._preloaded
    backend = registry.create_backend(Settings(home=tmp_path, n_threads=1))  # equal settings, another object
    try:
        assert registry._key(settings) not in registry._preloaded  # taken, not built a second time
        assert backend.tokenize("Hello there") and backend.context_size > 0
        assert "".join(e.text for e in backend.stream(*_ask())).strip()
    finally:
        backend.close()


def test_a_failed_preload_is_the_callers_error(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, model=str(tmp_path / "missing.gguf"))
    registry.preload(settings)
    with pytest.raises(RolecraftError, match=r"missing\.gguf"):
        registry.create_backend(settings)


def test_other_settings_do_not_take_a_preloaded_model(tmp_path: Path) -> None:
    registry.preload(Settings(home=tmp_path, n_threads=1))
    other = registry.create_backend(Settings(home=tmp_path, n_threads=2))
    try:
        assert other.llm.n_threads == 2  # type: ignore[attr-defined]
    finally:
        other.close()
        registry.create_backend(Settings(home=tmp_path, n_threads=1)).close()


def _ask() -> tuple:
    from rolecraft.backends.base import SamplingParams
    from rolecraft.messages import Message

    return [Message("user", "Say hello.")], SamplingParams(max_tokens=4, temperature=0.0)
