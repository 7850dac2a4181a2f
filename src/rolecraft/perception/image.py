"""Images a user shows the character, turned into something a text-only model can talk about.

`load_image` is the one safe decoder: it reads the header first and refuses
pictures above a pixel limit before any pixel is decoded (decompression bombs),
takes the first frame of animations, applies the EXIF rotation, and converts
CMYK, 16-bit, float, palette and alpha images to plain RGB. Anything that is
not a readable image becomes a `RolecraftError`, never a crash.

`observe_image` builds an `ImageObservation`: top ImageNet labels, where the
faces are (never who), dominant colours in words, brightness with a day/night
guess, orientation and size. `.content_text()` says what it shows in plain
words (what small models pick up: measured with `rolecraft eval`'s image
grounding probe), `.to_text()` is the full description with sizes and scores,
and `render_observation` puts them in the user's template ("[{{user}} shows
{{char}} a picture. {{char}} sees {{content}}.]"). Observations are cached by the image's SHA-256
(an in-memory LRU, optionally backed by a folder of JSON files).
"""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolecraft.characters.macros import expand_macros
from rolecraft.errors import RolecraftError
from rolecraft.files import write_atomic

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_IMAGE_TEMPLATE = "[{{user}} shows {{char}} a picture. {{char}} sees {{content}}.]"
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO", "AVIF")
ANALYSIS_SIDE = 640
OBSERVER_VERSION = "1"
_DECODE_ERRORS = (
    OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, TypeError,
    ZeroDivisionError, OverflowError, RuntimeError, MemoryError, Image.DecompressionBombError,
)
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


class ImageOptions(BaseModel):
    """How to look at a picture; the lead's Settings fields map onto these."""

    model_config = ConfigDict(extra="forbid")

    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="Refuse images with more pixels than this.")
    top_k: int = Field(3, ge=1, le=10, description="ImageNet labels to keep.")
    min_score: float = Field(0.05, ge=0.0, le=1.0, description="Drop labels below this probability (top 1 is kept).")
    faces: bool = Field(True, description="Look for faces (position only, no identity).")
    threads: int = Field(1, ge=1, le=64, description="CPU threads for the classifier.")


class Label(BaseModel):
    name: str
    score: float


class Face(BaseModel):
    """A face's box in original pixels plus where it sits, in words."""

    x: int
    y: int
    w: int
    h: int
    position: str


class ImageObservation(BaseModel):
    """What the character can see in a picture."""

    sha256: str
    format: str
    width: int
    height: int
    frames: int = 1
    orientation: Literal["landscape", "portrait", "square"]
    labels: list[Label] = Field(default_factory=list)
    faces: list[Face] = Field(default_factory=list)
    colours: list[str] = Field(default_factory=list)
    brightness: float = Field(description="Mean luminance, 0 (black) to 1 (white).")
    light: Literal["very dark", "dark", "dim", "moderately lit", "bright"]
    time_of_day: Literal["day", "night", "unclear"]

    def to_text(self) -> str:
        """A short English description for the prompt."""
        parts = [f"a {self.orientation} {'animated ' if self.frames > 1 else ''}image, {self.width}×{self.height}"]
        if self.labels:
            shown = ", ".join(f"{lb.name} ({lb.score:.0%})" for lb in self.labels)
            parts.append(f"it most likely shows: {shown}")
        parts.append(self.faces_text())
        if self.colours:
            parts.append("colours: " + ", ".join(self.colours))
        guess = {"day": ", probably daytime", "night": ", probably night or a dark room", "unclear": ""}
        parts.append(f"{self.light}{guess[self.time_of_day]}")
        return "; ".join(parts)

    def content_text(self) -> str:
        """What the picture shows, content first and in plain words (no sizes or scores): what a character
        would say it sees. Unsure labels are hedged."""
        names = [lb.name for lb in self.labels]
        if not names:
            seen = "something hard to make out"
        elif self.labels[0].score >= 0.3:
            seen = names[0] + (f" (perhaps {' or '.join(names[1:3])})" if len(names) > 1 else "")
        else:
            seen = "something like " + " or ".join(names[:3])
        parts = [seen]
        if self.faces:
            parts.append("a person's face" if len(self.faces) == 1 else f"{len(self.faces)} people's faces")
        if self.colours:
            parts.append("in " + " and ".join(self.colours[:2]))
        return ", ".join(parts)

    def faces_text(self) -> str:
        """The faces part of the description."""
        if not self.faces:
            return "no human faces"
        if len(self.faces) == 1:
            return f"one human face, {self.faces[0].position}"
        where = "; ".join(f.position for f in self.faces[:4])
        return f"{len(self.faces)} human faces ({where})"


def image_error(message: str, code: str = "invalid_image") -> RolecraftError:
    return RolecraftError(message, code=code, param="image")


def load_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode `data` into an upright RGB image, refusing more than `max_pixels` before decoding."""
    image, _, _ = _decode(data, max_pixels, draft=None)
    return image


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and check the pixel count before anything is decoded."""
    if not data:
        raise image_error("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # plugin chatter about odd headers; we check size ourselves
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        raise _too_large(None, max_pixels) from None
    except Image.UnidentifiedImageError:
        raise image_error(f"not an image rolecraft can read (supported: {', '.join(ALLOWED_FORMATS)})") from None
    except _DECODE_ERRORS as exc:
        raise image_error(f"unreadable image header ({type(exc).__name__}: {exc})") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise image_error(f"the image claims a size of {width}×{height}")
    if width * height > max_pixels:
        raise _too_large(image.size, max_pixels)
    return image


def _too_large(size: tuple[int, int] | None, max_pixels: int) -> RolecraftError:
    what = f"{size[0]}×{size[1]} = {size[0] * size[1]:,} pixels" if size else "far too many pixels"
    return image_error(f"the image has {what}, more than the limit of {max_pixels:,}", code="image_too_large")


def _decode(data: bytes, max_pixels: int, draft: int | None) -> tuple[Image.Image, Image.Image, tuple[int, int]]:
    """(upright RGB image, the opened file, upright size in original pixels); `draft` lets JPEG decode smaller."""
    opened = _open(data, max_pixels)
    stored_size = opened.size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if getattr(opened, "n_frames", 1) > 1:
                opened.seek(0)
            if draft and opened.format in ("JPEG", "MPO"):
                opened.draft(None, (draft, draft))
            opened.load()
            rgb = to_rgb(_transpose(opened))
    except Image.DecompressionBombError:
        raise _too_large(stored_size, max_pixels) from None
    except _DECODE_ERRORS as exc:
        raise image_error(f"the image is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    width, height = stored_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        upright = (height, width) if _orientation_tag(opened) in _SWAPPING_ORIENTATIONS else stored_size
    return rgb, opened, upright


def _orientation_tag(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1) or 1)
    except _DECODE_ERRORS:
        return 1


def _transpose(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block leaves the picture as stored."""
    try:
        return ImageOps.exif_transpose(image) or image
    except _DECODE_ERRORS:
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Plain 8-bit RGB from any mode: 16-bit/float grey is rescaled, alpha is composited on white."""
    mode = image.mode
    if mode.startswith(("I", "F")):
        image = _grey_to_8bit(image)
        mode = image.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if mode == "RGB" else image.convert("RGB")


def _grey_to_8bit(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    pixels = np.nan_to_num(pixels, nan=0.0, posinf=0.0, neginf=0.0)
    top = float(pixels.max()) if pixels.size else 0.0
    if image.mode.startswith("F") and top <= 1.0:
        scale = 255.0
    elif image.mode.startswith("I;16") or top > 255.0:
        scale = 255.0 / 65535.0 if top <= 65535.0 else 255.0 / top
    else:
        scale = 1.0
    return Image.fromarray(np.clip(pixels * scale, 0, 255).astype(np.uint8), mode="L")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def observe_image(
    data: bytes, *, options: ImageOptions | None = None, cache: ObservationCache | None = None
) -> ImageObservation:
    """Look at a picture: labels, faces, colours, light, orientation and size (cached by SHA-256)."""
    options = options or ImageOptions()
    digest = sha256_hex(data)
    key = cache_key(digest, options)
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    rgb, opened, (width, height) = _decode(data, options.max_pixels, draft=ANALYSIS_SIDE)
    analysed = _analysis_copy(rgb)
    observation = ImageObservation(
        sha256=digest,
        format=opened.format or "unknown",
        width=width,
        height=height,
        frames=getattr(opened, "n_frames", 1),
        orientation=orientation_of(width, height),
        labels=_labels(analysed, options),
        faces=_faces(analysed) if options.faces else [],
        **light_and_colours(analysed),
    )
    if cache is not None:
        cache.put(key, observation)
    return observation


def _analysis_copy(image: Image.Image) -> Image.Image:
    if max(image.size) <= ANALYSIS_SIDE:
        return image
    copy = image.copy()
    copy.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return copy


def _labels(image: Image.Image, options: ImageOptions) -> list[Label]:
    from rolecraft.perception.vision import classifier

    ranked = classifier().predict(image, top_k=options.top_k, threads=options.threads)
    kept = [pair for i, pair in enumerate(ranked) if i == 0 or pair[1] >= options.min_score]
    return [Label(name=name, score=round(score, 4)) for name, score in kept]


def _faces(image: Image.Image) -> list[Face]:
    from rolecraft.perception.vision import face_detector

    width, height = image.size
    return [
        Face(x=b.x, y=b.y, w=b.w, h=b.h, position=face_position(b.x, b.y, b.w, b.h, width, height))
        for b in face_detector().detect(image)[:10]
    ]


def face_position(x: int, y: int, w: int, h: int, width: int, height: int) -> str:
    """Where a face sits, in words: "close-up, centre", "small, top left", ..."""
    cx, cy = (x + w / 2) / width, (y + h / 2) / height
    horizontal = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    vertical = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else ""
    share = w / width
    size = "close-up" if share > 0.35 else "medium" if share > 0.12 else "small"
    place = "centre" if horizontal == "centre" and not vertical else " ".join(p for p in (vertical, horizontal) if p)
    return f"{size}, {place}"


def orientation_of(width: int, height: int) -> Literal["landscape", "portrait", "square"]:
    ratio = width / height
    return "square" if 0.95 <= ratio <= 1.05 else "landscape" if ratio > 1 else "portrait"


def light_and_colours(image: Image.Image) -> dict:
    """Brightness, a light word, a day/night guess and up to three dominant colour names."""
    thumb = image.resize((48, 48), Image.Resampling.BILINEAR)
    small = np.asarray(thumb, dtype=np.float32) / 255.0
    luminance = float((small @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)).mean())
    light = ("very dark" if luminance < 0.12 else "dark" if luminance < 0.25 else "dim" if luminance < 0.4
             else "moderately lit" if luminance < 0.65 else "bright")
    time_of_day = "night" if luminance < 0.2 else "day" if luminance > 0.5 else "unclear"
    return {"brightness": round(luminance, 3), "light": light, "time_of_day": time_of_day,
            "colours": dominant_colours(thumb)}


def dominant_colours(image: Image.Image, *, most: int = 3, min_share: float = 0.12) -> list[str]:
    """Names of the colours covering at least `min_share` of the pixels, largest first."""
    hsv = np.asarray(image.convert("HSV"), dtype=np.float32).reshape(-1, 3) / 255.0
    names = colour_names(hsv[:, 0], hsv[:, 1], hsv[:, 2])
    values, counts = np.unique(names, return_counts=True)
    ranked = sorted(zip(values.tolist(), counts.tolist(), strict=True), key=lambda item: -item[1])
    return [name for name, count in ranked if count / max(1, len(names)) >= min_share][:most]


_HUES = ((15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (200, "teal"), (255, "blue"),
         (290, "purple"), (345, "pink"), (361, "red"))


def colour_names(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A plain colour word per HSV pixel (arrays with values in 0..1)."""
    degrees = h * 360.0
    hue_names = np.select([degrees < limit for limit, _ in _HUES], [name for _, name in _HUES], "red")
    warm = (degrees < 45) | (degrees >= 345)
    brown = (warm & (v < 0.55)) | ((degrees >= 15) & (degrees < 45) & (s < 0.45))
    conditions = [v < 0.18, (s < 0.18) & (v > 0.85), s < 0.18, brown]
    return np.select(conditions, ["black", "white", "grey", "brown"], hue_names)


def cache_key(digest: str, options: ImageOptions) -> str:
    """Observations depend on the bytes and on the options that change the result."""
    return f"{digest}-v{OBSERVER_VERSION}-k{options.top_k}-m{options.min_score:g}-f{int(options.faces)}"


class ObservationCache:
    """A small thread-safe LRU of observations, optionally backed by a folder of JSON files."""

    def __init__(self, capacity: int = 256, folder: Path | None = None) -> None:
        self.capacity = capacity
        self.folder = folder
        self._items: OrderedDict[str, ImageObservation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> ImageObservation | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        found = self._read(key)
        if found is not None:
            self._remember(key, found)
        return found

    def put(self, key: str, observation: ImageObservation) -> None:
        self._remember(key, observation)
        self._write(key, observation)

    def _remember(self, key: str, observation: ImageObservation) -> None:
        with self._lock:
            self._items[key] = observation
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def _read(self, key: str) -> ImageObservation | None:
        if self.folder is None:
            return None
        try:
            return ImageObservation.model_validate_json((self.folder / f"{key}.json").read_bytes())
        except (OSError, ValidationError, ValueError):
            return None

    def _write(self, key: str, observation: ImageObservation) -> None:
        """Write-then-rename, so a reader never sees half a file; a cache that cannot be written is skipped."""
        if self.folder is None:
            return
        try:
            write_atomic(self.folder / f"{key}.json", observation.model_dump_json())
        except OSError:
            return


def render_observation(
    observation: ImageObservation, template: str = DEFAULT_IMAGE_TEMPLATE, *, char: str, user: str
) -> str:
    """The observation in the user's template; {{content}} (what it shows, in words), {{observation}} (the full
    description with sizes and scores), {{labels}}, {{faces}}, {{colours}}, {{size}}, {{char}} and {{user}}
    are filled in, unknown macros are left as they are."""
    fields = {
        "{{observation}}": observation.to_text(),
        "{{content}}": observation.content_text(),
        "{{labels}}": ", ".join(lb.name for lb in observation.labels) or "nothing recognisable",
        "{{faces}}": observation.faces_text(),
        "{{colours}}": ", ".join(observation.colours) or "mixed colours",
        "{{size}}": f"{observation.width}×{observation.height}",
    }
    text = template
    for macro, value in fields.items():
        text = text.replace(macro, value)
    return expand_macros(text, char, user)
