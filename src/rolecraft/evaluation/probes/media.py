"""Probes that need abilities from other rooms: image grounding (perception) and expression accuracy.

Both ask the capability registry (evaluation/capabilities.py) for what they
need and, when it is missing, report "skipped: <reason>". The photos are real
pictures that ship inside Python packages (scikit-image, scikit-learn,
matplotlib), located on disk without importing those packages; a photo whose
package is not installed is a counted "missing image" skip.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from rolecraft.evaluation.metrics import mentions, normalize
from rolecraft.evaluation.probes.base import MetricSpec, Probe, Record, Sample, SkipSample, flag
from rolecraft.evaluation.probes.scores import names_reply, perceived_targets
from rolecraft.evaluation.suite import Photo

if TYPE_CHECKING:
    from rolecraft.evaluation.context import ProbeContext

EXPRESSION_LABELS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "neutral", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise",
)


def photo_path(photo: Photo) -> Path | None:
    """The photo's file inside its package, or None when the package or file is missing."""
    spec = importlib.util.find_spec(photo.package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / photo.path
        if candidate.is_file():
            return candidate
    return None


class ImageGroundingProbe(Probe):
    name = "image_grounding"
    title = "Image grounding (real photos)"
    metrics = (
        MetricSpec("grounded", "replies naming what the photo shows"),
        MetricSpec("grounded_perceived", "replies naming what perception reported"),
        MetricSpec("perceived_right", "perception's labels naming what the photo shows"),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        if not ctx.suite.photos:
            return "the suite has no photos"
        _, reason = ctx.ability("image_turn")
        return reason

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        characters = ctx.suite.photo_characters or ctx.suite.characters[:1]
        return [Sample(f"{char_id}|{photo.id}", (char_id, photo)) for char_id in characters
                for photo in ctx.suite.photos]

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        char_id, photo = sample.item
        path = photo_path(photo)
        if path is None:
            raise SkipSample("missing_image", f"{photo.package}/{photo.path} is not installed")
        reply = ctx.reply(f"photo|{sample.id}", char_id, ctx.suite.photo_prompt, image=path)["text"]
        hit = mentions(reply, photo.concepts)
        labels = perceived_labels(ctx, path)
        targets = perceived_targets(labels)
        seen = names_reply(reply, targets)
        values = {"grounded": flag(hit), "grounded_perceived": flag(seen),
                  "perceived_right": flag(names_reply(" ".join([*labels, *targets]), photo.concepts))}
        return self.record(sample, values, reply=reply, concept=hit, photo=photo.id, labels=labels,
                           perceived_concept=seen)

    def notes(self, ctx: ProbeContext) -> list[str]:
        return ["'grounded': the reply names one of the photo's listed concepts (synonyms included). "
                "'grounded_perceived': it names what perception reported (a label, its head noun, or a synonym or "
                "hypernym from data/concepts.json), which the model was shown; 'perceived_right': those labels "
                "name the photo's concepts, the ceiling for grounding through perception."]


def perceived_labels(ctx: ProbeContext, path: Path) -> list[str]:
    """The labels perception reports for the photo (what a text-only model is told it shows), cached per run."""
    key = f"labels:{path}"
    if key not in ctx.memo:
        from rolecraft.perception.image import observe_image

        ctx.memo[key] = [label.name for label in observe_image(path.read_bytes()).labels]
    return ctx.memo[key]


class ExpressionProbe(Probe):
    name = "expression"
    title = "Expression accuracy (labelled lines)"
    metrics = (MetricSpec("correct", "lines given their labelled expression"),)

    def prepare(self, ctx: ProbeContext) -> str | None:
        if not ctx.suite.expressions:
            return "the suite has no labelled expression lines"
        _, reason = ctx.ability("expression")
        return reason

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        return [Sample(f"line{i}", line) for i, line in enumerate(ctx.suite.expressions)]

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        classify, _ = ctx.ability("expression")
        label = str(classify(sample.item.text))
        correct = normalize(label) == normalize(sample.item.label)
        return self.record(sample, {"correct": flag(correct)}, text=sample.item.text, expected=sample.item.label,
                           predicted=label)

    def baselines(self, ctx: ProbeContext) -> dict[str, float]:
        return {"correct": 1 / len(EXPRESSION_LABELS)}
