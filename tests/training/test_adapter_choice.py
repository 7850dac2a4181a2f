"""Which LoRA adapter a character speaks through: its card's, the default, or none."""

from __future__ import annotations

from pathlib import Path

from rolecraft.backends.adapters import adapter_for
from rolecraft.characters.cards import card_from_character, character_from_card
from rolecraft.characters.model import Character
from rolecraft.conversation.sampling import sampling_for
from rolecraft.settings import Settings


def test_card_adapter_beats_the_default_and_off_beats_both(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, adapter="shared.gguf")
    own = Character(name="Pip", adapter="/models/pip.gguf")
    plain = Character(name="Bo")
    assert adapter_for(settings, own) == "/models/pip.gguf"
    assert adapter_for(settings, plain) == str(tmp_path / "adapters" / "shared.gguf")
    assert adapter_for(Settings(home=tmp_path), plain) is None
    off = Settings(home=tmp_path, adapter="off")
    assert adapter_for(off, own) is None and sampling_for(off, own, "You").adapter is None
    assert sampling_for(settings, own, "You").adapter == "/models/pip.gguf"


def test_the_adapter_travels_in_the_card() -> None:
    card = card_from_character(Character(name="Pip", adapter="pip.gguf"))
    assert card["data"]["extensions"]["rolecraft"]["adapter"] == "pip.gguf"
    assert character_from_card(card).adapter == "pip.gguf"


def test_installed_adapters_are_named_like_vllm_lora_modules(tmp_path: Path) -> None:
    from rolecraft.backends.adapters import installed_adapters
    from rolecraft.backends.models import adapter_name

    folder = tmp_path / "adapters"
    (folder / "ember-peft").mkdir(parents=True)
    (folder / "ember-peft" / "adapter_config.json").write_text("{}")
    (folder / "ember.gguf").write_bytes(b"GGUF")
    (folder / "notes.txt").write_text("not an adapter")
    (folder / "empty").mkdir()
    assert installed_adapters(Settings(home=tmp_path)) == {"ember": folder / "ember.gguf",
                                                          "ember-peft": folder / "ember-peft"}
    assert adapter_name("/x/ember.gguf") == "ember" and adapter_name("/x/ember-peft") == "ember-peft"
