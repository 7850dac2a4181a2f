"""The transformers backend honours the samplers it can map (logit_bias, penalties, DRY, typical_p, min_p)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from rolecraft.backends import SamplingParams, create_backend
from rolecraft.messages import Message
from rolecraft.settings import Settings

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

LOOP = [Message("user", "Repeat after me forever: the cat sat on the mat, the cat sat on the mat, "
                        "the cat sat on the mat,")]
GREEDY = SamplingParams(max_tokens=24, temperature=0.0, repeat_penalty=1.0, min_p=0.0)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    made = create_backend(Settings(backend="transformers", home=tmp_path_factory.mktemp("home"), n_ctx=512,
                                   device="cpu", seed=1))
    yield made
    made.close()
    torch.set_num_threads(threads)


def _reply(backend: object, **changes: object) -> str:
    return "".join(e.text for e in backend.stream(LOOP, replace(GREEDY, **changes)))  # type: ignore[attr-defined]


def test_logit_bias_dry_and_penalties_are_honoured(backend: object) -> None:
    plain = _reply(backend)
    ids = backend.tokenize(plain)  # type: ignore[attr-defined]
    assert len(set(ids)) < len(ids), plain  # greedy decoding repeats itself here
    common = max(set(ids), key=ids.count)
    assert common not in backend.tokenize(_reply(backend, logit_bias={common: -100.0}))  # type: ignore[attr-defined]
    assert _reply(backend, dry_multiplier=3.0) != plain
    assert _reply(backend, frequency_penalty=2.0, presence_penalty=2.0) != plain
    sampled = {"temperature": 1.0, "seed": 5}
    assert _reply(backend, **sampled, typical_p=0.2, min_p=0.3) == _reply(backend, **sampled, typical_p=0.2, min_p=0.3)
