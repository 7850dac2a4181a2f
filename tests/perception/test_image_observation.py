"""Perception on real photos (scikit-image's samples): the observation names what is in the picture."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rolecraft.perception import ImageOptions, ObservationCache, observe_image, render_observation
from rolecraft.perception.image import cache_key, colour_names, face_position, sha256_hex

skdata = pytest.importorskip("skimage.data")


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def chelsea() -> bytes:
    return jpeg(skdata.chelsea())


def test_cat_photo_is_seen_as_a_cat(chelsea: bytes) -> None:
    observation = observe_image(chelsea)
    assert observation.labels and any("cat" in label.name.lower() for label in observation.labels)
    assert (observation.width, observation.height, observation.orientation) == (451, 300, "landscape")
    assert observation.faces == []
    assert "cat" in observation.to_text()
    assert "brown" in observation.colours


def test_coffee_photo_is_seen_as_coffee() -> None:
    observation = observe_image(jpeg(skdata.coffee()))
    assert observation.labels[0].name in {"espresso", "coffee mug", "cup", "tea cup"}
    assert observation.labels[0].score > 0.5
    assert "espresso" in observation.to_text() or "coffee" in observation.to_text()


def test_face_is_found_and_placed_without_identity() -> None:
    observation = observe_image(jpeg(skdata.astronaut()))
    assert len(observation.faces) == 1
    face = observation.faces[0]
    assert 120 < face.x + face.w / 2 < 300 and face.y < 256
    assert "one human face" in observation.to_text()
    assert "centre" in face.position


def test_rendered_observation_uses_the_template(chelsea: bytes) -> None:
    observation = observe_image(chelsea)
    text = render_observation(observation, char="Ember", user="Ann")
    assert text.startswith("[Ann shows Ember a picture. Ember sees a cat") and text.endswith(".]")
    assert "451" not in text and "%" not in text  # content first: no geometry, no scores
    full = render_observation(observation, "[{{observation}}]", char="Ember", user="Ann")
    assert full.startswith("[a landscape image, 451×300;")
    custom = render_observation(observation, "<{{user}}> holds up {{labels}} ({{size}}; {{faces}}) {{random}}",
                                char="Ember", user="Ann")
    assert custom.startswith("<Ann> holds up ") and "(451×300; no human faces) {{random}}" in custom


def test_observations_are_cached_by_hash_in_memory_and_on_disk(chelsea: bytes, tmp_path: Path) -> None:
    cache = ObservationCache(capacity=2, folder=tmp_path / "images")
    first = observe_image(chelsea, cache=cache)
    assert observe_image(chelsea, cache=cache) is first
    fresh = ObservationCache(folder=tmp_path / "images")
    assert fresh.get(cache_key(sha256_hex(chelsea), ImageOptions())) == first
    assert [p.suffix for p in (tmp_path / "images").iterdir()] == [".json"]


def test_broken_cache_files_are_ignored(chelsea: bytes, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / f"{cache_key(sha256_hex(chelsea), ImageOptions())}.json").write_text("{not json")
    observation = observe_image(chelsea, cache=ObservationCache(folder=folder))
    assert observation.sha256 == sha256_hex(chelsea)


def test_options_change_the_cache_key_and_the_result(chelsea: bytes) -> None:
    cache = ObservationCache()
    one = observe_image(chelsea, options=ImageOptions(top_k=1, faces=False), cache=cache)
    three = observe_image(chelsea, options=ImageOptions(top_k=3, min_score=0.0), cache=cache)
    assert len(one.labels) == 1 and len(three.labels) == 3


def test_colour_words_and_face_positions() -> None:
    hsv = np.array([[0.0, 0.0, 0.05], [0.0, 0.0, 0.95], [0.0, 1.0, 1.0], [0.6, 0.9, 0.8], [0.08, 0.8, 0.3]])
    assert colour_names(hsv[:, 0], hsv[:, 1], hsv[:, 2]).tolist() == ["black", "white", "red", "blue", "brown"]
    assert face_position(10, 10, 20, 20, 300, 300) == "small, top left"
    assert face_position(100, 100, 120, 120, 300, 300) == "close-up, centre"
    assert face_position(220, 220, 60, 60, 300, 300) == "medium, bottom right"


def test_dark_image_reads_as_night() -> None:
    observation = observe_image(jpeg(np.full((120, 200, 3), 12, dtype=np.uint8)))
    assert (observation.light, observation.time_of_day) == ("very dark", "night")
    assert observation.colours == ["black"]
