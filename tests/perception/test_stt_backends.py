"""The STT registry: the default backend, language limits, and the Whisper backend's offline behaviour."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rolecraft.errors import RolecraftError
from rolecraft.perception import available_stt, create_stt, transcribe
from rolecraft.perception.stt import PocketSphinxSTT, resolve_stt
from rolecraft.perception.whisper import bundled_installed

pytest.importorskip("pocketsphinx")


def test_builtin_backends_are_registered() -> None:
    assert {"pocketsphinx", "whisper"} <= set(available_stt())
    assert isinstance(create_stt("pocketsphinx"), PocketSphinxSTT)
    assert create_stt("pocketsphinx") is create_stt("pocketsphinx")
    assert create_stt().name == resolve_stt("auto") == ("whisper" if bundled_installed() else "pocketsphinx")


def test_unknown_backend() -> None:
    with pytest.raises(RolecraftError) as info:
        create_stt("nope")
    assert info.value.code == "unknown_stt" and "pocketsphinx" in info.value.message


def test_pocketsphinx_is_english_only() -> None:
    with pytest.raises(RolecraftError) as info:
        transcribe(np.zeros(16000, dtype=np.float32), backend="pocketsphinx", language="zh")
    assert info.value.code == "unsupported_language"


def test_noise_gives_no_words_and_no_crash() -> None:
    rng = np.random.default_rng(1)
    result = transcribe((rng.standard_normal(16000) * 0.01).astype(np.float32), backend="pocketsphinx")
    assert result.backend == "pocketsphinx" and isinstance(result.text, str)


def test_whisper_offline_without_weights_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RolecraftError) as info:
        create_stt("whisper", model="tiny.en", cache_dir=tmp_path)
    if importlib.util.find_spec("faster_whisper") is None:
        assert info.value.code == "missing_dependency" and "rolecraft[whisper]" in info.value.message
    else:
        assert info.value.code == "model_unavailable" and "offline" in info.value.message
