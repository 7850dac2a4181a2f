"""The prefix KV cache: a new chat restores its character's saved prefix and answers exactly as a cold run.

The model tests run the bundled SmolLM2 on a real card (Ember); the eviction and lookup
tests use small hand-made snapshots, since they are about the folder, not the model.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from rolecraft.backends.base import SamplingParams
from rolecraft.backends.kv_cache import Snapshot
from rolecraft.backends.llama_cpp import LlamaCppBackend
from rolecraft.backends.prefix_cache import PrefixCache, scope_of, stable_count
from rolecraft.characters.io import load_character_file
from rolecraft.messages import Message
from rolecraft.prompting import ContextBuilder, TurnInput
from rolecraft.settings import Settings


def ember_messages(backend: LlamaCppBackend, user_text: str, description: str | None = None) -> list[Message]:
    """A new session's first prompt for Ember (optionally with an edited description)."""
    card = resources.files("rolecraft.characters.samples") / "ember.png"
    character = load_character_file(Path(str(card)))
    if description is not None:
        character = character.model_copy(update={"description": description})
    history = [TurnInput("assistant", character.first_mes), TurnInput("user", user_text)]
    return ContextBuilder(backend, reply_tokens=24).build(character, "User", history).messages


def greedy(backend: LlamaCppBackend, messages: list[Message], key: str) -> str:
    params = SamplingParams(max_tokens=24, temperature=0.0, seed=1, repeat_penalty=1.0, cache_key=key)
    return "".join(event.text or "" for event in backend.stream(messages, params))


@pytest.fixture
def backend_for(settings: Settings):
    made: list[LlamaCppBackend] = []

    def make(**overrides: object) -> LlamaCppBackend:
        # One thread: on a loaded 2-core machine two threads stall each other (benchmarks/busy_cpu.py).
        made.append(LlamaCppBackend(settings.model_copy(update={"n_threads": 1, **overrides})))
        return made[-1]

    yield make
    for backend in made:
        backend.close()


def test_restored_prefix_answers_token_for_token_like_a_cold_run(backend_for) -> None:
    cold = backend_for(kv_prefix_mb=0)
    expected = greedy(cold, ember_messages(cold, "What is the stew made of?"), "cold")
    first = backend_for()
    greedy(first, ember_messages(first, "Hello there!"), "one")  # computes and saves Ember's prefix
    assert first.prefixes.hits["saved"] == 1
    second = backend_for()  # another process: only the folder is shared
    messages = ember_messages(second, "What is the stew made of?")
    assert greedy(second, messages, "two") == expected
    assert second.prefixes.hits == {"hit": 1, "miss": 0, "saved": 0}
    prefix_len = len(second.template.ids(messages[:stable_count(messages)], generation_prompt=False))
    assert prefix_len > 300  # definition, examples and greeting: most of the prompt came from disk


def test_an_edited_card_misses_the_cache(backend_for) -> None:
    first = backend_for()
    greedy(first, ember_messages(first, "Hello there!"), "one")
    second = backend_for()
    greedy(second, ember_messages(second, "Hello there!", description="Ember is a retired lighthouse keeper."),
           "two")
    assert second.prefixes.hits == {"hit": 0, "miss": 1, "saved": 1}
    assert len(list(second.prefixes.folder.glob("*.npz"))) == 2


def test_stable_prefix_ends_before_the_first_user_message() -> None:
    messages = [Message("system", "card", kind="definition"), Message("system", "ex", kind="examples"),
                Message("assistant", "greeting", kind="history"), Message("user", "hi", kind="history"),
                Message("system", "late", kind="late")]
    assert stable_count(messages) == 3
    assert stable_count([Message("user", "hi", kind="history")]) == 0


def snapshot(tokens: list[int], size: int = 1000) -> Snapshot:
    return Snapshot(tokens=np.array(tokens, dtype=np.int32), state=np.zeros(size, dtype=np.uint8))


def test_longest_cached_prefix_wins_and_scopes_are_separate(tmp_path: Path) -> None:
    cache = PrefixCache(tmp_path, budget=1 << 20)
    scope = scope_of("model", 2048, "template", None)
    cache.put(scope, snapshot(list(range(40))))
    cache.put(scope, snapshot(list(range(80))))
    prompt = list(range(100))
    assert len(cache.longest(scope, prompt).tokens) == 80
    assert cache.longest(scope, prompt, longer_than=80) is None
    assert len(cache.longest(scope, [*range(60), 7, 7]).tokens) == 40
    assert cache.longest(scope, list(range(80))) is not None  # 40 fits; 80 would leave nothing to evaluate
    assert cache.longest(scope_of("model", 2048, "template", "adapter@1"), prompt) is None


def test_eviction_keeps_the_folder_within_its_budget(tmp_path: Path) -> None:
    cache = PrefixCache(tmp_path, budget=7000)  # room for two entries of ~2.7 kB (state, tokens, zip headers)
    scope = scope_of("m")
    for n in (40, 50, 60):
        cache.put(scope, snapshot(list(range(n)), size=2000))
    names = sorted(int(p.stem.split("-")[1]) for p in tmp_path.glob("*.npz"))
    assert names == [50, 60]
    assert sum(p.stat().st_size for p in tmp_path.glob("*.npz")) <= 7000
