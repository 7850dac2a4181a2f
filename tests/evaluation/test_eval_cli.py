"""The real `rolecraft eval` command: argument errors, skipped probes, report files (no generation needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import rolecraft
from rolecraft.cli.eval import default_configurations, parse_config
from rolecraft.errors import RolecraftError
from rolecraft.evaluation.context import Configuration
from rolecraft.settings import Settings


def test_parse_config() -> None:
    assert parse_config("base") == Configuration("base", {})
    assert parse_config("off:catchphrase_bias=0;max-tokens=32") == Configuration(
        "off", {"catchphrase_bias": "0", "max_tokens": "32"})
    assert parse_config("s:seed=null").overrides == {"seed": None}
    for bad in (":catchphrase_bias=0", "x:catchphrase_bias", "x:=3"):
        with pytest.raises(RolecraftError, match="bad --config"):
            parse_config(bad)


def test_default_ablation_is_bias_off_then_on() -> None:
    off, on = default_configurations(Settings(catchphrase_bias=3.5))
    assert (off.name, off.overrides, on.overrides) == ("no_bias", {"catchphrase_bias": 0.0}, {"catchphrase_bias": 3.5})
    assert default_configurations(Settings(catchphrase_bias=0))[1].overrides == {"catchphrase_bias": 2.0}


def test_cli_rejects_bad_input_without_traceback(home: Path, tmp_path: Path) -> None:
    cases = [
        (["eval", "--probes", "nope"], "unknown probe 'nope'"),
        (["eval", "-c", "x:catchphrase_bias=lots"], "configuration 'x'"),
        (["eval", "-c", "a", "-c", "a"], "configuration names must be unique"),
        (["eval", "--judge-url", "http://127.0.0.1:9/v1"], "needs both --judge-url and --judge-model"),
        (["eval", str(tmp_path / "missing.json")], "cannot read suite"),
        (["eval", "--dataset", str(tmp_path / "none.jsonl")], "dataset not found"),
    ]
    for args, message in cases:
        result = rolecraft(home, *args, "-o", str(tmp_path / "out"))
        assert result.returncode == 1, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_cli_reports_skipped_probes(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = rolecraft(home, "eval", "--probes", "expression,judge", "-o", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "judge            skipped: no judge configured" in result.stdout
    summary = json.loads((out / "report.json").read_text())
    assert [c["name"] for c in summary["configurations"]] == ["no_bias", "catchphrase_bias"]
    assert summary["command"][:2] == ["rolecraft", "eval"]
    assert summary["configurations"][0]["settings"]["max_tokens"] == 24  # set explicitly by cli_env
    assert (out / "report.md").read_text().count("skipped: ") >= 1
