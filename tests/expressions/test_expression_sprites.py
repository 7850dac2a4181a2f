"""Sprites for expression labels: card assets (CHARX files, data: URLs), a sprite folder, the neutral stand-in."""

from __future__ import annotations

import base64
from pathlib import Path

from rolecraft.characters import Asset, Character
from rolecraft.expressions import sprite_for

PNG = b"\x89PNG\r\n\x1a\n-sprite-"


def test_card_assets_and_data_urls() -> None:
    character = Character(
        name="Ember",
        assets=[Asset(type="emotion", uri="embeded://assets/emotion/joy.png", name="joy", ext="png")],
        expressions={"joy": "embeded://assets/emotion/joy.png",
                     "Anger": "data:image/png;base64," + base64.b64encode(PNG).decode(),
                     "fear": "https://example.invalid/fear.png"},
        asset_files={"assets/emotion/joy.png": PNG},
    )
    joy = sprite_for(character, "joy")
    assert joy is not None and (joy.label, joy.data, joy.media_type) == ("joy", PNG, "image/png")
    anger = sprite_for(character, "anger")
    assert anger is not None and anger.data == PNG and anger.media_type == "image/png"
    fear = sprite_for(character, "fear")
    assert fear is not None and fear.data is None and fear.uri.startswith("https://")
    assert sprite_for(character, "grief") is None


def test_folder_and_neutral_fallback(tmp_path: Path) -> None:
    (tmp_path / "sadness.webp").write_bytes(b"RIFF....WEBP")
    (tmp_path / "neutral.png").write_bytes(PNG)
    character = Character(name="Vellum", expressions={"joy": "embeded://assets/missing.png"})
    sad = sprite_for(character, "sadness", folder=tmp_path)
    assert sad is not None and (sad.label, sad.media_type) == ("sadness", "image/webp")
    stand_in = sprite_for(character, "joy", folder=tmp_path)
    assert stand_in is not None and stand_in.label == "neutral" and stand_in.data == PNG
    assert sprite_for(character, "joy") is None
