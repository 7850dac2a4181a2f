"""Probes against reference replies: BLEU / chrF / ROUGE-L, and the MMRole-Eval judge.

Samples are the suite's reference items plus every dataset sample that has a
reference. Both probes share one generation per sample (same cache key).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rolecraft.evaluation.datasets import DialogueSample
from rolecraft.evaluation.judge import (
    IMAGE_METRIC,
    MMROLE_METRICS,
    JudgeCase,
    mmrole_prompt,
    swapped,
    verdict_from_review,
)
from rolecraft.evaluation.metrics import rouge_l, score_from_stats, sentence_stats
from rolecraft.evaluation.probes.base import MetricSpec, Probe, Record, Sample
from rolecraft.evaluation.suite import ReferenceItem

if TYPE_CHECKING:
    from rolecraft.evaluation.context import ProbeContext


def dialogue_reply(ctx: ProbeContext, sample: DialogueSample) -> dict:
    """The configuration's reply to a dataset sample; its image is shown only if images can be."""
    send, _ = ctx.ability("image_turn") if sample.image else (None, None)
    image = sample.image if send is not None else None
    reply = ctx.reply(f"dialogue|{sample.id}", ctx.dataset_character(sample), sample.user, history=sample.history,
                      image=image)
    return {**reply, "image_shown": image is not None}


def reference_samples(ctx: ProbeContext) -> list[Sample]:
    samples = [Sample(f"suite:{item.id}", item, "suite") for item in ctx.suite.references]
    return samples + [Sample(d.id, d, "dataset") for d in ctx.dialogues if d.reference]


def generate(ctx: ProbeContext, sample: Sample) -> tuple[dict, str, JudgeCase, Path | None]:
    """(reply, reference, what the judge is told, image shown) for a reference sample."""
    item: Any = sample.item
    if isinstance(item, ReferenceItem):
        character = ctx.character(item.character)
        history = [t for e in item.history for t in (("user", e.user), ("assistant", e.assistant))]
        reply = ctx.reply(f"reference|{item.id}", item.character, item.prompt, history=history)
        speakers = [(ctx.settings.user_name if role == "user" else character.name, text) for role, text in history]
        profile = " ".join(p for p in (character.description, character.personality) if p)
        return reply, item.reference, JudgeCase(character.name, profile, speakers, item.prompt), None
    reply = dialogue_reply(ctx, item)
    speakers = [("User" if role == "user" else item.character, text) for role, text in item.history]
    case = JudgeCase(item.character, item.profile, speakers, item.user, item.other)
    return reply, item.reference, case, item.image if reply["image_shown"] else None


def _corpus(kind: str) -> Any:
    """Corpus score of the chosen records, from the per-sample statistics stored in their details."""

    def statistic(records: Sequence[Record], idx: np.ndarray) -> float:
        return score_from_stats(kind, [records[i].details[f"{kind}_stats"] for i in idx])

    return statistic


class ReferenceProbe(Probe):
    name = "reference"
    title = "Reference metrics"
    group_label = "source"
    metrics = (
        MetricSpec("bleu", "BLEU (corpus, sacrebleu)", scale="score", corpus=_corpus("bleu")),
        MetricSpec("chrf", "chrF (corpus, sacrebleu)", scale="score", corpus=_corpus("chrf")),
        MetricSpec("rouge_l", "ROUGE-L F1 (mean)", scale="f1"),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        return None if reference_samples(ctx) else "no reference replies (suite or dataset)"

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        return reference_samples(ctx)

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        reply, reference, _, _ = generate(ctx, sample)
        text = reply["text"]
        stats = {kind: sentence_stats(kind, text, reference) for kind in ("bleu", "chrf")}
        values = {kind: score_from_stats(kind, [row]) for kind, row in stats.items()}
        values["rouge_l"] = rouge_l(text, reference)
        return self.record(sample, values, reply=text, reference=reference, image_shown=reply.get("image_shown"),
                           bleu_stats=stats["bleu"], chrf_stats=stats["chrf"])

    def notes(self, ctx: ProbeContext) -> list[str]:
        return ["BLEU and chrF are corpus-level, from sacrebleu's per-sample statistics (their interval resamples "
                "whole samples; per-sample values in samples.jsonl are sentence-level); BLEU tokenizes a pair with "
                "'zh' when its reference is Chinese/Japanese/Korean, else '13a'. ROUGE-L is our LCS F1 over words "
                "(CJK: characters). One reference per sample, so absolute numbers are low."]


def metric_key(metric: str) -> str:
    return re.sub(r"[^a-z]+", "_", metric.casefold()).strip("_")


class MMRoleJudgeProbe(Probe):
    name = "judge"
    title = "MMRole-Eval judge (answer / reference score ratio)"
    group_label = "source"
    metrics = tuple(MetricSpec(metric_key(m), m, scale="ratio") for m in MMROLE_METRICS)

    def prepare(self, ctx: ProbeContext) -> str | None:
        if ctx.judge is None:
            return "no judge configured (use --judge-url and --judge-model)"
        return None if reference_samples(ctx) else "no reference replies (suite or dataset)"

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        return reference_samples(ctx)

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        reply, reference, case, image = generate(ctx, sample)
        record = self.record(sample, {}, reply=reply["text"], reference=reference, reviews={})
        for metric in MMROLE_METRICS:
            key = metric_key(metric)
            record.values[key] = None
            if metric == IMAGE_METRIC and image is None:
                record.failures[key] = "not applicable: no image shown to the model"
                continue
            swap = swapped(ctx.seed, sample.id, metric)
            first, second = (reference, reply["text"]) if swap else (reply["text"], reference)
            prompt = mmrole_prompt(metric, case, first, second, with_image=image is not None)
            verdict = verdict_from_review(ctx.ask_judge(f"mmrole|{sample.id}|{key}", prompt, image=image), swap=swap)
            record.values[key] = verdict.ratio
            record.details["reviews"][key] = {"review": verdict.review, "swapped": swap,
                                              "scores": [verdict.answer_score, verdict.reference_score]}
            if verdict.reason:
                record.failures[key] = verdict.reason
        return record

    def notes(self, ctx: ProbeContext) -> list[str]:
        judge = ctx.judge.config if ctx.judge else None
        where = f"{judge.model} at {judge.base_url}" if judge else "none"
        return [f"Judge: {where}. Each metric is the judge's score for the answer divided by its score for the "
                "reference (1.0 = as good as the reference); answer and reference are shown in a seeded random "
                "order per sample and metric to cancel position bias."]
