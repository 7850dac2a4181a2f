"""Image perception speed per photo on this CPU: cold load, then warm p50/p90, next to the bare model.

Run: .venv/bin/python benchmarks/perception_speed.py [--reps 5] [--threads 1]
Photos are scikit-image's samples encoded as JPEG, plus one 12-megapixel JPEG.
The baseline is the EfficientNet-Lite0 forward pass alone on a ready tensor, measured
in the same run, so the overhead of decoding, faces, colours and the observation shows.
Target: warm p50 <= 150 ms.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from _common import percentile
from PIL import Image
from skimage import data as skdata

PHOTOS = ("chelsea", "coffee", "astronaut", "camera", "rocket")


def jpeg(pixels: np.ndarray, size: tuple[int, int] | None = None) -> bytes:
    image = Image.fromarray(pixels).convert("RGB")
    if size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def cold_start(photo: bytes) -> None:
    from rolecraft.perception import image as image_module
    from rolecraft.perception import vision

    import_ms, _ = timed(__import__, "torch")
    classifier_ms, _ = timed(vision.classifier)
    faces_ms, _ = timed(vision.face_detector)
    first_ms, _ = timed(image_module.observe_image, photo)
    total = import_ms + classifier_ms + faces_ms + first_ms
    print(f"cold: import torch {import_ms:.0f} ms, load EfficientNet-Lite0 {classifier_ms:.0f} ms, "
          f"load face cascade {faces_ms:.0f} ms, first observation {first_ms:.0f} ms -> {total:.0f} ms in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    photos = {name: jpeg(getattr(skdata, name)()) for name in PHOTOS}
    big = jpeg(skdata.chelsea(), (4000, 3000))
    cold_start(photos["chelsea"])

    import torch

    from rolecraft.perception import ImageOptions, load_image, observe_image
    from rolecraft.perception.vision import classifier

    options = ImageOptions(threads=args.threads)
    model = classifier()
    ours, bare, big_runs = [], [], []
    for _ in range(args.reps):
        for payload in photos.values():
            ours.append(timed(observe_image, payload, options=options)[0])
            batch = torch.from_numpy(model.preprocess(load_image(payload)))
            torch.set_num_threads(args.threads)
            with torch.inference_mode():
                bare.append(timed(model.model, batch)[0])
        big_runs.append(timed(observe_image, big, options=options)[0])
    print(f"warm, {len(ours)} observations of {len(photos)} photos, {args.threads} thread(s), no cache:")
    print(f"  rolecraft observe_image:  p50 {percentile(ours, 50):.0f} ms, p90 {percentile(ours, 90):.0f} ms"
          "  (target p50 <= 150 ms)")
    print(f"  baseline model forward:   p50 {percentile(bare, 50):.0f} ms, p90 {percentile(bare, 90):.0f} ms")
    print(f"  overhead (decode, faces, colours): p50 {percentile(ours, 50) - percentile(bare, 50):.0f} ms")
    print(f"  12-megapixel JPEG:        p50 {percentile(big_runs, 50):.0f} ms (JPEG draft decoding)")
    for name, payload in photos.items():
        observation = observe_image(payload, options=options)
        print(f"  {name:9s} -> {observation.to_text()}")


if __name__ == "__main__":
    main()
