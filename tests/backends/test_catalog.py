"""The model catalog: assembling parts from installed distributions, its failure modes, and the real download.

The fast tests install small "part" distributions into a temporary site folder (a real
dist-info with a RECORD, found by importlib.metadata), so `install`, `resolve` and the
checks run end to end without PyPI. The slow test installs qwen2.5-1.5b from PyPI.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from rolecraft.backends import catalog
from rolecraft.backends.catalog import ASSEMBLED, AssembledModel, Part, install, models_dir, resolve
from rolecraft.backends.models import is_named_model, resolve_gguf
from rolecraft.errors import RolecraftError

PIECES = [b"GGUF" + b"a" * 1000, b"b" * 2000, b"c" * 5]


def _write_distribution(site: Path, name: str, version: str, relative: str, data: bytes) -> None:
    package = name.replace("-", "_")
    target = site / package / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    info = site / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{package}/{relative},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def _model(tag: str, *, size: int | None = None, sha256: str | None = None) -> AssembledModel:
    whole = b"".join(PIECES)
    parts = tuple(Part(f"rc-test-{tag}-part{i}", "1.0", f"data/part{i:02d}.bin") for i in range(1, 4))
    return AssembledModel(f"test-{tag}", "a test model", f"test-{tag}", size or len(whole),
                          sha256 or hashlib.sha256(whole).hexdigest(), parts)


def _installer(site: Path, model: AssembledModel, calls: list[list[str]]):
    def fake_pip(requirements: list[str]) -> None:
        calls.append(requirements)
        for part, data in zip(model.parts, PIECES, strict=True):
            if part.requirement in requirements:
                _write_distribution(site, part.distribution, part.version, part.relative, data)
    return fake_pip


def test_install_fetches_missing_parts_then_assembles_once(site: Path, tmp_path: Path) -> None:
    model, calls = _model("ok"), []
    ASSEMBLED[model.id] = model
    try:
        path = install(model.id, tmp_path / "home", installer=_installer(site, model, calls))
        assert path == models_dir(tmp_path / "home") / "test-ok.gguf"
        assert path.read_bytes() == b"".join(PIECES)
        assert calls == [[p.requirement for p in model.parts]]
        install(model.id, tmp_path / "home", installer=_installer(site, model, calls))
        assert len(calls) == 1, "an assembled model is not installed again"
        assert resolve(model.id, tmp_path / "home") == path
    finally:
        del ASSEMBLED[model.id]


@pytest.mark.parametrize("wrong", ["size", "sha256"])
def test_wrong_size_or_digest_leaves_nothing_behind(site: Path, tmp_path: Path, wrong: str) -> None:
    good = _model(wrong)
    model = _model(wrong, size=good.size + 1) if wrong == "size" else _model(wrong, sha256="0" * 64)
    ASSEMBLED[model.id] = model
    try:
        with pytest.raises(RolecraftError) as caught:
            install(model.id, tmp_path / "home", installer=_installer(site, model, []))
        assert caught.value.code == "corrupt_weights"
        leftovers = list(models_dir(tmp_path / "home").glob("*")) if models_dir(tmp_path / "home").exists() else []
        assert leftovers == []
    finally:
        del ASSEMBLED[model.id]


def test_parts_installed_by_pip_extra_are_assembled_on_first_use(site: Path, tmp_path: Path) -> None:
    model = _model("extra")
    _installer(site, model, [])([p.requirement for p in model.parts])
    ASSEMBLED[model.id] = model
    try:
        path = resolve_gguf(model.id, cache_dir=tmp_path / "home" / "hub")
        assert path == tmp_path / "home" / "models" / "test-extra.gguf"
        assert path.stat().st_size == model.size
    finally:
        del ASSEMBLED[model.id]


def test_missing_part_names_the_package(site: Path, tmp_path: Path) -> None:
    model = _model("gone")
    ASSEMBLED[model.id] = model
    try:
        with pytest.raises(RolecraftError) as caught:
            resolve_gguf(model.id, home=tmp_path / "home")
        assert caught.value.code == "model_not_installed"
        assert "rolecraft models install test-gone" in caught.value.message
    finally:
        del ASSEMBLED[model.id]


def test_named_models_are_the_bundled_and_catalog_ones() -> None:
    assert is_named_model("smollm2") and is_named_model(" qwen2.5-1.5b") and is_named_model("qwen2.5-0.5b")
    assert not is_named_model("model.gguf") and not is_named_model("Qwen/Qwen2.5-7B-Instruct")


def test_unknown_catalog_name_is_a_clear_error() -> None:
    with pytest.raises(RolecraftError) as caught:
        catalog.catalog_entry("llama-99b")
    assert caught.value.status == 404 and "qwen2.5-1.5b" in caught.value.message


def test_catalog_matches_the_pyproject_extras() -> None:
    import tomllib

    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for model in ASSEMBLED.values():
        assert extras[model.extra] == [p.requirement for p in model.parts]
        assert [p.relative for p in model.parts] == [f"data/part{i:02d}.bin" for i in range(1, len(model.parts) + 1)]


def test_models_list_shows_installed_and_installable(home: Path, site: Path) -> None:
    from rolecraft.cli import main

    model = _model("listed")
    ASSEMBLED[model.id] = model
    try:
        before = CliRunner().invoke(main, ["models", "list"])
        assert before.exit_code == 0, before.output
        assert "qwen2.5-1.5b" in before.output and "smollm2" in before.output
        assert "installable: rolecraft models install test-listed" in before.output
        install(model.id, home, installer=_installer(site, model, []))
        after = CliRunner().invoke(main, ["models", "list"]).output
        (line,) = [row for row in after.splitlines() if "test-listed" in row]
        assert line.rstrip().endswith("MB  installed")
    finally:
        del ASSEMBLED[model.id]


@pytest.mark.slow
def test_install_qwen_1_5b_from_pypi_and_generate(home: Path) -> None:
    """The real thing: pip-install the 22 parts, assemble 1.1 GB into a fresh home, load, generate."""
    from rolecraft.cli import main

    result = CliRunner().invoke(main, ["models", "install", "qwen2.5-1.5b"])
    assert result.exit_code == 0, result.output
    path = home / "models" / "qwen2.5-1.5b.gguf"
    assert path.stat().st_size == ASSEMBLED["qwen2.5-1.5b"].size
    with path.open("rb") as handle:
        assert b"Qwen2.5 Coder 1.5B Instruct" in handle.read(4096)
    from rolecraft.backends import SamplingParams, create_backend
    from rolecraft.messages import Message
    from rolecraft.settings import Settings

    backend = create_backend(Settings(home=home, model="qwen2.5-1.5b", n_ctx=512, n_threads=2))
    try:
        events = list(backend.stream([Message("user", "Say hello.")], SamplingParams(max_tokens=4, temperature=0)))
    finally:
        backend.close()
    assert events[-1].completion_tokens > 0 and "".join(e.text for e in events).strip()
