"""`load_image` on awkward and hostile input: odd modes are converted, bad bytes become RolecraftError."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fuzzing import CUTS, FLIPS, FUZZ, mutate
from rolecraft.errors import RolecraftError
from rolecraft.perception import ImageOptions, load_image, observe_image


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def gradient(w: int = 48, h: int = 32) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)
    pixels = np.stack([np.tile(x, (h, 1)), np.tile(x[::-1], (h, 1)), np.full((h, w), 90, np.uint8)], axis=-1)
    return Image.fromarray(pixels)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height pixels but whose data is a few bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def expect_error(data: bytes, code: str, **kwargs: object) -> RolecraftError:
    with pytest.raises(RolecraftError) as info:
        load_image(data, **kwargs)
    assert info.value.code == code and info.value.param == "image"
    return info.value


@pytest.mark.parametrize("data", [b"", b"hello, not an image", b"%PDF-1.4\n", b"\x89PNG\r\n\x1a\n"])
def test_not_an_image(data: bytes) -> None:
    expect_error(data, "invalid_image")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_truncated_images_are_refused(fmt: str) -> None:
    data = encode(gradient(200, 150), fmt)
    expect_error(data[: len(data) // 2], "invalid_image")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    started = time.perf_counter()
    error = expect_error(png_header_only(10_000, 5_000), "image_too_large")
    assert "50,000,000 pixels" in error.message and "limit of 40,000,000" in error.message
    assert time.perf_counter() - started < 0.5
    assert "40,000,000" in expect_error(png_header_only(100_000, 100_000), "image_too_large").message
    expect_error(encode(gradient(), "PNG"), "image_too_large", max_pixels=1000)


def test_cmyk_is_converted_to_rgb() -> None:
    cmyk = Image.new("CMYK", (40, 30), (0, 255, 255, 0))
    image = load_image(encode(cmyk, "JPEG"))
    assert image.mode == "RGB" and image.size == (40, 30)
    r, g, b = image.getpixel((20, 15))
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_grey_is_rescaled_not_clipped() -> None:
    grey = Image.fromarray(np.full((20, 30), 32768, dtype=np.uint16))
    assert grey.mode == "I;16"
    image = load_image(encode(grey, "PNG"))
    assert image.mode == "RGB" and 120 <= image.getpixel((5, 5))[0] <= 136


def test_float_tiff_is_rescaled() -> None:
    image = load_image(encode(Image.fromarray(np.full((10, 10), 0.5, dtype=np.float32)), "TIFF"))
    assert image.mode == "RGB" and 120 <= image.getpixel((1, 1))[0] <= 135


def test_alpha_and_palette_transparency_composite_on_white() -> None:
    clear = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    assert load_image(encode(clear, "PNG")).getpixel((3, 3)) == (255, 255, 255)
    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([0, 0, 0] * 256)
    data = encode(palette, "PNG", transparency=0)
    assert load_image(data).getpixel((3, 3)) == (255, 255, 255)
    assert load_image(encode(Image.new("LA", (8, 8), (0, 255)), "PNG")).getpixel((1, 1)) == (0, 0, 0)
    assert load_image(encode(Image.new("1", (8, 8), 1), "PNG")).getpixel((1, 1)) == (255, 255, 255)


def test_exif_rotation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to display
    data = encode(gradient(60, 20), "JPEG", exif=exif.tobytes())
    assert load_image(data).size == (20, 60)
    observation = observe_image(data, options=ImageOptions(faces=False))
    assert (observation.width, observation.height, observation.orientation) == (20, 60, "portrait")


def test_animation_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((250, 0, 0), (0, 0, 250), (0, 250, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = load_image(buffer.getvalue())
    assert image.getpixel((4, 4))[0] > 200
    observation = observe_image(buffer.getvalue(), options=ImageOptions(faces=False))
    assert observation.frames == 3 and "animated" in observation.to_text()


def test_unusual_but_allowed_formats_decode() -> None:
    for fmt in ("BMP", "TIFF", "WEBP", "GIF"):
        assert load_image(encode(gradient(), fmt)).size == (48, 32)


def _check(data: bytes) -> None:
    try:
        image = load_image(data, max_pixels=4_000_000)
    except RolecraftError as exc:
        assert exc.code in {"invalid_image", "image_too_large"}
        return
    assert image.mode == "RGB" and image.width * image.height <= 4_000_000


SEEDS = [encode(gradient(), fmt) for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")]


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.sampled_from(SEEDS), FLIPS, CUTS)
def test_fuzz_mutated_images(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    _check(mutate(seed, flips, cut))


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_fuzz_observe_image(seed: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    try:
        observation = observe_image(bytes(data))
    except RolecraftError as exc:
        assert exc.code in {"invalid_image", "image_too_large"}
        return
    assert observation.to_text()
