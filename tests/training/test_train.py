"""LoRA training end to end on the bundled model: train, export to GGUF, chat through the adapter."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from cli_helpers import rolecraft
from rolecraft.backends import create_backend
from rolecraft.backends.base import SamplingParams
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.settings import Settings
from rolecraft.training.checkpoints import write_atomic
from rolecraft.training.config import TrainConfig
from rolecraft.training.export import lora_to_gguf
from rolecraft.training.runs import train_dpo, train_sft
from rolecraft.training.samples import PreferencePair, TrainingSample, read_jsonl, write_jsonl

CARD = {"spec": "chara_card_v2", "spec_version": "2.0",
        "data": {"name": "Pip", "description": "Pip is a tiny brass robot who loves gears.", "first_mes": "Beep!"}}
LINES = [("Hello!", "Beep boop! Pip greets you, friend of gears."),
         ("What do you eat?", "Beep boop! Pip eats oil and sunshine."),
         ("Where do you live?", "Beep boop! Pip lives in a clock tower."),
         ("Are you sad?", "Beep boop! Pip is never sad near gears."),
         ("Can you dance?", "Beep boop! Pip spins like a cog."),
         ("Who made you?", "Beep boop! A tinker made Pip from brass.")]


def _samples(lines: list[tuple[str, str]], prefix: str) -> list[TrainingSample]:
    return [TrainingSample(id=f"{prefix}{i}", character="pip", messages=[
        {"role": "user", "content": u}, {"role": "assistant", "content": a}]) for i, (u, a) in enumerate(lines)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One CLI training run shared by the tests below: 6 steps on Pip's lines, attached to Pip's card."""
    root = tmp_path_factory.mktemp("train")
    home = root / "home"
    card = root / "pip.json"
    card.write_text(json.dumps(CARD))
    for char_id in ("pip", "pip-base"):
        assert rolecraft(home, "characters", "import", str(card), "--id", char_id).returncode == 0
    write_jsonl(root / "train.jsonl", _samples(LINES, "t"))
    write_jsonl(root / "eval.jsonl", _samples([("Good morning!", "Beep boop! Pip wakes with the sun.")], "e"))
    result = rolecraft(home, "train", "sft", "--data", str(root / "train.jsonl"), "--eval-data",
                       str(root / "eval.jsonl"), "--out", str(root / "out"), "--max-steps", "6", "--batch-size", "2",
                       "--learning-rate", "3e-3", "--max-length", "512", "--save-every", "3", "--quiet",
                       "--character", "pip", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "home": home, "out": root / "out", "stdout": result.stdout}


def test_training_lowers_the_loss_and_writes_a_gguf_adapter(trained: dict) -> None:
    rows = [json.loads(line) for line in (trained["out"] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1]["loss"] < rows[0]["loss"] * 0.8
    before, after = (float(x) for x in trained["stdout"].split("eval loss ")[1].split()[0:3:2])
    assert after < before
    assert (trained["out"] / "adapter" / "adapter_model.safetensors").is_file()
    assert (trained["out"] / "adapter.gguf").read_bytes()[:4] == b"GGUF"
    assert len(list((trained["out"] / "checkpoints").glob("step-*"))) == 2


def test_chat_speaks_through_the_cards_adapter(trained: dict) -> None:
    home = trained["home"]
    shown = json.loads(rolecraft(home, "characters", "show", "pip", "--json").stdout)
    assert shown["data"]["extensions"]["rolecraft"]["adapter"].endswith("adapter.gguf")
    tuned = rolecraft(home, "chat", "pip", "--new", stdin="Hello!\n")
    base = rolecraft(home, "chat", "pip-base", "--new", stdin="Hello!\n")
    assert tuned.returncode == 0 and base.returncode == 0, tuned.stderr + base.stderr
    reply = tuned.stdout.split("Pip:")[-1].strip()
    assert reply and reply != base.stdout.split("Pip:")[-1].strip()
    assert "beep" in reply.lower()


def test_adapters_switch_per_request_without_reloading(trained: dict) -> None:
    backend = create_backend(Settings(home=trained["home"], n_threads=2))
    messages = [Message("system", "You are Pip, a tiny brass robot."), Message("user", "Hello!")]

    def say(adapter: str | None) -> str:
        params = SamplingParams(max_tokens=12, temperature=0, adapter=adapter, cache_key="s")
        return "".join(e.text for e in backend.stream(messages, params))

    gguf = str(trained["out"] / "adapter.gguf")
    base, tuned = say(None), say(gguf)
    assert tuned != base and say(None) == base and say(gguf) == tuned
    backend.close()


def test_adapter_for_another_base_is_refused(trained: dict, tmp_path: Path) -> None:
    meta = json.loads((trained["out"] / "adapter" / "rolecraft.json").read_text())
    other = dict(meta["base_identity"], embedding_length=960, name="SmolLM2-360M")
    wrong = lora_to_gguf(trained["out"] / "adapter", tmp_path / "wrong.gguf", other)
    backend = create_backend(Settings(home=trained["home"], n_threads=2))
    messages = [Message("user", "Hi")]
    with pytest.raises(RolecraftError, match="trained for another base model") as caught:
        list(backend.stream(messages, SamplingParams(max_tokens=4, adapter=str(wrong))))
    assert caught.value.code == "invalid_adapter"
    with pytest.raises(RolecraftError, match="not a LoRA GGUF"):
        list(backend.stream(messages, SamplingParams(max_tokens=4, adapter=str(backend.model_path))))
    assert "".join(e.text for e in backend.stream(messages, SamplingParams(max_tokens=4, temperature=0)))
    backend.close()


def test_resume_continues_from_the_last_checkpoint(trained: dict, tmp_path: Path) -> None:
    settings = Settings(home=trained["home"], n_threads=2)
    cfg = TrainConfig(data=trained["root"] / "train.jsonl", out=tmp_path / "run", max_steps=2, batch_size=2,
                      max_length=512, save_every=1, gguf=False)
    first = train_sft(settings, cfg, progress=False)
    assert first.run.resumed_from == 0 and first.gguf is None
    again = train_sft(settings, cfg.model_copy(update={"max_steps": 3}), progress=False)
    assert again.run.resumed_from == 2
    assert [r["step"] for r in again.run.history] == [3]
    rows = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3]
    with pytest.raises(RolecraftError, match="different batch_size"):
        train_sft(settings, cfg.model_copy(update={"max_steps": 4, "batch_size": 1}), progress=False)
    fresh = train_sft(settings, cfg.model_copy(update={"max_steps": 1, "resume": False}), progress=False)
    assert fresh.run.resumed_from == 0
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-0000001"]


def test_dpo_from_the_sft_adapter_prefers_the_chosen_reply(trained: dict, tmp_path: Path) -> None:
    pairs = [PreferencePair(id=f"p{i}", character="pip", messages=[{"role": "user", "content": u}], chosen=a,
                            rejected="As an AI language model, I can help with that.")
             for i, (u, a) in enumerate(LINES[:4])]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    cfg = TrainConfig(data=tmp_path / "pairs.jsonl", eval_data=tmp_path / "pairs.jsonl", out=tmp_path / "dpo",
                      max_steps=3, batch_size=2, max_length=512, learning_rate=3e-3, beta=0.5,
                      init_adapter=trained["out"] / "adapter")
    done = train_dpo(Settings(home=trained["home"], n_threads=2), cfg, progress=False)
    assert done.eval_before == pytest.approx(0.6931, abs=1e-3)  # log 2: the policy starts as the reference
    assert done.eval_after < done.eval_before
    assert "reward_accuracy" in done.run.history[-1]
    assert done.gguf is not None and done.gguf.is_file()


def test_merged_export_folds_the_adapter_in(trained: dict, tmp_path: Path) -> None:
    result = rolecraft(trained["home"], "train", "export", str(trained["out"] / "adapter"), "--merged",
                       str(tmp_path / "merged"), "--gguf", str(tmp_path / "again.gguf"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "merged" / "model.safetensors").is_file()
    assert (tmp_path / "merged" / "config.json").is_file()
    assert (tmp_path / "again.gguf").read_bytes() == (trained["out"] / "adapter.gguf").read_bytes()
    # a Hugging Face model folder trains too (through the transformers backend's tokenizer and template)
    cfg = TrainConfig(data=trained["root"] / "train.jsonl", out=tmp_path / "hf", base=str(tmp_path / "merged"),
                      max_steps=1, batch_size=2, max_length=512)
    done = train_sft(Settings(home=trained["home"], n_threads=2), cfg, progress=False)
    assert (done.run.adapter / "adapter_model.safetensors").is_file() and done.gguf is None


def test_bad_training_data_fails_clearly(tmp_path: Path, home: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(RolecraftError, match="holds no training samples"):
        read_jsonl(empty, TrainingSample)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "character": "pip", "messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(RolecraftError, match=r"line 1 .*no non-empty assistant"):
        read_jsonl(bad, TrainingSample)
    result = rolecraft(home, "train", "sft", "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"))
    assert result.returncode == 1 and "training data not found" in result.stderr
    result = rolecraft(home, "train", "sft", "--data", str(bad), "--out", str(tmp_path / "o"), "--lora-r", "zero")
    assert result.returncode == 1 and "--lora-r" in result.stderr


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path: Path) -> None:
    good = write_atomic(tmp_path / "ckpt", lambda folder: (folder / "weights").write_text("v1"))

    def disk_full(folder: Path) -> None:
        (folder / "weights").write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(RolecraftError, match="the disk is full; earlier checkpoints are kept"):
        write_atomic(tmp_path / "ckpt", disk_full)
    assert (good / "weights").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


