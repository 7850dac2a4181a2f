"""Build the bundled sample character cards (PNG, V3 `ccv3` + V2 `chara` chunks).

Run from the repository root:

    PYTHONPATH=src .venv/bin/python scripts/make_samples.py

It reads the definitions in scripts/sample_characters.toml (TOML so that the
dialogue needs no quote escaping), draws each avatar procedurally with Pillow
(no fonts or external images, so the output is the same on every machine) and
writes src/rolecraft/characters/samples/<key>.png. Dates are fixed so that
re-running it only changes the files when the definitions or drawings change.
"""

from __future__ import annotations

import io
import math
import random
import tomllib
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from rolecraft.characters import Character, dump_character, load_character

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(__file__).resolve().parent / "sample_characters.toml"
OUT_DIR = ROOT / "src" / "rolecraft" / "characters" / "samples"
SIZE = 256
SCALE = 4  # draw at 4x and downsample: cheap anti-aliasing
CREATED = 1735689600  # 2025-01-01T00:00:00Z, fixed for reproducible files

Box = tuple[float, float, float, float]


def _canvas(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    """A vertical gradient canvas at drawing scale."""
    n = SIZE * SCALE
    image = Image.new("RGB", (n, n))
    draw = ImageDraw.Draw(image)
    for y in range(n):
        t = y / (n - 1)
        draw.line([(0, y), (n, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return image


def _glow(image: Image.Image, box: Box, colour: tuple[int, int, int], radius: int) -> Image.Image:
    """Blend a blurred disc of `colour` onto `image`."""
    layer = Image.new("RGB", image.size, (0, 0, 0))
    ImageDraw.Draw(layer).ellipse(box, fill=colour)
    return Image.composite(layer, image, layer.convert("L").filter(ImageFilter.GaussianBlur(radius)))


def _finish(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(out, "PNG", optimize=True)
    return out.getvalue()


def _s(*values: float) -> list[float]:
    """Scale 256-pixel design coordinates to the drawing canvas."""
    return [v * SCALE for v in values]


def draw_ember() -> bytes:
    """Forge glow, an anvil and a flame with sparks."""
    image = _glow(_canvas((34, 12, 10), (110, 38, 14)), _s(48, 60, 208, 220), (255, 140, 40), 60)
    draw = ImageDraw.Draw(image)
    rng = random.Random(7)
    for _ in range(28):
        x, y, r = rng.uniform(30, 226), rng.uniform(20, 150), rng.uniform(1, 2.6)
        draw.ellipse(_s(x - r, y - r, x + r, y + r), fill=(255, 200 + rng.randrange(50), 90))
    for colour, scale in (((240, 90, 20), 1.0), ((255, 170, 40), 0.7), ((255, 235, 150), 0.4)):
        h, w = 100 * scale, 38 * scale
        draw.polygon(_s(128, 160 - h, 128 + w, 160 - h * 0.35, 128, 160, 128 - w, 160 - h * 0.35), fill=colour)
        draw.ellipse(_s(128 - w, 160 - w * 1.6, 128 + w, 160 + w * 0.3), fill=colour)
    anvil = (30, 24, 26)
    draw.polygon(_s(52, 168, 204, 168, 196, 186, 168, 190, 88, 190, 70, 182), fill=anvil)
    draw.polygon(_s(52, 168, 30, 172, 52, 180), fill=anvil)
    draw.rectangle(_s(104, 190, 152, 216), fill=anvil)
    draw.polygon(_s(88, 216, 168, 216, 180, 236, 76, 236), fill=anvil)
    return _finish(image)


def draw_linyue() -> bytes:
    """A full moon over bamboo on a night-blue sky; no text, so no font is needed."""
    image = _glow(_canvas((12, 18, 48), (40, 52, 96)), _s(96, 30, 216, 150), (140, 150, 200), 50)
    draw = ImageDraw.Draw(image)
    rng = random.Random(11)
    for _ in range(40):
        x, y, r = rng.uniform(0, 256), rng.uniform(0, 140), rng.uniform(0.6, 1.6)
        draw.ellipse(_s(x - r, y - r, x + r, y + r), fill=(220, 225, 255))
    draw.ellipse(_s(116, 42, 196, 122), fill=(250, 244, 214))
    draw.ellipse(_s(140, 62, 156, 76), fill=(236, 228, 196))
    draw.ellipse(_s(162, 88, 174, 98), fill=(236, 228, 196))
    for x, width, shade in ((26, 11, (28, 84, 62)), (58, 8, (36, 104, 74)), (214, 12, (24, 76, 56))):
        _bamboo(draw, x, width, shade, rng)
    draw.rectangle(_s(0, 226, 256, 256), fill=(18, 30, 44))
    for y in range(230, 254, 6):
        draw.line(_s(150, y, 200, y), fill=(120, 126, 150), width=SCALE)
    return _finish(image)


def _bamboo(draw: ImageDraw.ImageDraw, x: float, width: float, shade: tuple[int, int, int], rng: random.Random) -> None:
    draw.rectangle(_s(x, 0, x + width, 256), fill=shade)
    dark = tuple(max(0, c - 18) for c in shade)
    for y in range(rng.randrange(10, 30), 256, 44):
        draw.rectangle(_s(x - 1, y, x + width + 1, y + 3), fill=dark)
        side = 1 if rng.random() < 0.5 else -1
        base = x + width / 2
        for k in range(3):
            tip = (base + side * (30 + 8 * k), y - 14 + 10 * k)
            mid = (base + side * (16 + 4 * k), y - 8 + 6 * k)
            draw.polygon(_s(base, y, mid[0], mid[1] - 5, *tip, mid[0], mid[1] + 5), fill=shade)


def draw_vellum() -> bytes:
    """A brass gear and monocle above a shelf of books on parchment."""
    image = _glow(_canvas((236, 222, 186), (198, 172, 128)), _s(20, 10, 236, 200), (248, 238, 210), 40)
    draw = ImageDraw.Draw(image)
    _gear(draw, (112, 104), 70, 56, 14, (176, 128, 52))
    draw.ellipse(_s(88, 80, 136, 128), fill=(236, 222, 186))
    draw.ellipse(_s(100, 92, 124, 116), fill=(120, 84, 34))
    _gear(draw, (190, 62), 30, 23, 9, (140, 100, 44))
    draw.ellipse(_s(150, 120, 214, 184), outline=(60, 44, 28), width=6 * SCALE)
    draw.ellipse(_s(158, 128, 206, 176), fill=(214, 232, 236))
    draw.arc(_s(164, 134, 200, 170), 200, 260, fill=(255, 255, 255), width=3 * SCALE)
    draw.line(_s(182, 184, 176, 214, 196, 232), fill=(60, 44, 28), width=2 * SCALE, joint="curve")
    draw.rectangle(_s(0, 214, 256, 220), fill=(92, 60, 36))
    rng = random.Random(3)
    x = 4.0
    spines = [(122, 38, 40), (40, 70, 104), (52, 92, 56), (150, 110, 40), (90, 52, 96)]
    while x < 250:
        w = rng.uniform(9, 17)
        h = rng.uniform(22, 34)
        draw.rectangle(_s(x, 214 - h, x + w - 1.5, 214), fill=rng.choice(spines))
        draw.rectangle(_s(x + 2, 214 - h + 5, x + w - 3.5, 214 - h + 7), fill=(214, 184, 96))
        x += w
    draw.rectangle(_s(0, 220, 256, 256), fill=(70, 44, 26))
    return _finish(image)


def _gear(
    draw: ImageDraw.ImageDraw,
    centre: tuple[float, float],
    outer: float,
    inner: float,
    teeth: int,
    colour: tuple[int, int, int],
) -> None:
    points: list[float] = []
    steps = teeth * 4
    for i in range(steps):
        radius = outer if i % 4 in (1, 2) else inner
        angle = 2 * math.pi * i / steps
        points += _s(centre[0] + radius * math.cos(angle), centre[1] + radius * math.sin(angle))
    draw.polygon(points, fill=colour)


AVATARS: dict[str, Callable[[], bytes]] = {"ember": draw_ember, "linyue": draw_linyue, "vellum": draw_vellum}


def build(key: str, definition: dict) -> Path:
    """Write one sample card and check that it loads back unchanged."""
    character = Character.model_validate(
        {**definition, "creation_date": CREATED, "modification_date": CREATED, "avatar": AVATARS[key]()}
    )
    data = dump_character(character, "png")
    loaded = load_character(data, f"{key}.png")
    if loaded.model_dump(exclude={"spec"}) != character.model_dump(exclude={"spec"}):
        raise SystemExit(f"{key}: the card does not load back unchanged")
    path = OUT_DIR / f"{key}.png"
    path.write_bytes(data)
    return path


def main() -> None:
    definitions = tomllib.loads(SOURCE.read_text(encoding="utf-8"))
    for key, definition in definitions.items():
        path = build(key, definition)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
