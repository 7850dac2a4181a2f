"""Probes on how a character speaks: reciting its card, narrating itself in the third person, repeating itself.

Copying and third-person narration score the persona replies (the same cached
generation per character and prompt as the catchphrase and out-of-character
probes), so they cost no model time. Repetition adds one scripted session per
character: its user lines are sent one after another, each turn seeing the
model's own earlier replies, as a user's chat would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rolecraft.backends.anticopy import card_text
from rolecraft.evaluation.probes.base import MetricSpec, Probe, Record, Sample, flag
from rolecraft.evaluation.probes.persona import persona_reply, persona_samples
from rolecraft.evaluation.probes.reference import dialogue_reply
from rolecraft.evaluation.probes.scores import (
    NEAR_IDENTICAL,
    copy_share,
    first_person,
    near_identical,
    novel_ngram_share,
    third_person_subject,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rolecraft.evaluation.context import ProbeContext


def spoken_samples(ctx: ProbeContext) -> list[Sample]:
    """Persona replies to the suite's prompts, plus one per dataset dialogue (long real profiles)."""
    return [*persona_samples(ctx, ctx.suite.prompts, "suite"), *(Sample(d.id, d, "dataset") for d in ctx.dialogues)]


def spoken_reply(ctx: ProbeContext, sample: Sample) -> tuple[str, str]:
    """(character id, reply) for a sample of `spoken_samples`."""
    if sample.group == "dataset":
        return ctx.dataset_character(sample.item), dialogue_reply(ctx, sample.item)["text"]
    char_id, prompt = sample.item
    return char_id, persona_reply(ctx, char_id, prompt)


def _pooled_copy_share(records: Sequence[Record], idx: np.ndarray) -> float:
    copied = sum(records[i].details["copied_ngrams"] for i in idx)
    total = sum(records[i].details["ngrams"] for i in idx)
    return copied / total if total else 0.0


def _spoken_reason(ctx: ProbeContext) -> str | None:
    has_prompts = ctx.suite.characters and ctx.suite.prompts
    return None if has_prompts or ctx.dialogues else "the suite has no characters or prompts and no dataset was given"


class CopyingProbe(Probe):
    name = "copying"
    title = "Profile copying (verbatim card n-grams)"
    group_label = "prompts from"
    metrics = (
        MetricSpec("copied", "reply n-grams standing verbatim in the card (pooled)", higher_is_better=False,
                   corpus=_pooled_copy_share),
        MetricSpec("any_copy", "replies with at least one copied n-gram", higher_is_better=False),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        return _spoken_reason(ctx)

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        return spoken_samples(ctx)

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        char_id, reply = spoken_reply(ctx, sample)
        share = copy_share(reply, card_text(ctx.character(char_id), ctx.settings.user_name))
        values = {"copied": share.share, "any_copy": flag(share.copied) if share.total else None}
        return self.record(sample, values, reply=reply, copied_ngrams=share.copied, ngrams=share.total, n=share.n)

    def notes(self, ctx: ProbeContext) -> list[str]:
        return ["n-grams of normalised words (n = 6), or of characters for CJK replies (n = 8), against the card's "
                "profile (description, appearance, personality, background, speech style, scenario, relationships; "
                "catchphrases, greetings and examples excluded). Pooled over replies; replies shorter than n are "
                "not counted."]


class ThirdPersonProbe(Probe):
    name = "third_person"
    title = "Third-person self-narration"
    group_label = "prompts from"
    metrics = (
        MetricSpec("own_name", "spoken sentences opening with the character's own name", higher_is_better=False),
        MetricSpec("third_person", "… with its name or he/she", higher_is_better=False),
        MetricSpec("first_person", "replies speaking as I / me / 我"),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        return _spoken_reason(ctx)

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        return spoken_samples(ctx)

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        char_id, reply = spoken_reply(ctx, sample)
        character = ctx.character(char_id)
        names = [character.name, *(character.nickname or "").split(), *character.name.split()]
        named = third_person_subject(reply, [n for n in names if len(n) >= 2], pronouns=False)
        either = named or third_person_subject(reply, [], pronouns=True)
        values = {"own_name": flag(named), "third_person": flag(either), "first_person": flag(first_person(reply))}
        return self.record(sample, values, reply=reply, evidence=either)

    def notes(self, ctx: ProbeContext) -> list[str]:
        return ["Only speech counts: text between *asterisks* (action narration, the role-play convention) is "
                "removed first. A sentence opening with he/she may be about someone else, so 'third_person' "
                "over-counts; 'own_name' is the strict figure."]


class RepetitionProbe(Probe):
    name = "repetition"
    title = "Repetition across replies"
    group_label = "replies compared"
    metrics = (
        MetricSpec("near_identical", "replies (near-)identical to a reply to another message", higher_is_better=False),
        MetricSpec("distinct_2", "new word bigrams per reply over a session (distinct-2)"),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        if not ctx.suite.characters or not (ctx.suite.prompts or ctx.suite.session_prompts):
            return "the suite has no characters, prompts or session prompts"
        return None

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        lines = ctx.suite.session_prompts
        session = [Sample(f"{c}|turn{t}", (c, t), "session") for c in ctx.suite.characters for t in range(len(lines))]
        return [*persona_samples(ctx, ctx.suite.prompts, "prompts"), *session]

    def _session(self, ctx: ProbeContext, char_id: str, upto: int) -> list[str]:
        """The character's replies to the session's first `upto` + 1 lines, each seeing the earlier ones."""
        history: list[tuple[str, str]] = []
        replies: list[str] = []
        for turn, line in enumerate(ctx.suite.session_prompts[:upto + 1]):
            reply = ctx.reply(f"session|{char_id}|{turn}", char_id, line, history=history)["text"]
            history += [("user", line), ("assistant", reply)]
            replies.append(reply)
        return replies

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        if sample.group == "prompts":
            char_id, prompt = sample.item
            reply = persona_reply(ctx, char_id, prompt)
            others = [persona_reply(ctx, char_id, p) for p in ctx.suite.prompts if p != prompt]
            score = near_identical(reply, others)
            return self.record(sample, {"near_identical": flag(score), "distinct_2": None}, reply=reply,
                               similarity=score)
        char_id, turn = sample.item
        replies = self._session(ctx, char_id, turn)
        reply, earlier = replies[-1], replies[:-1]
        score = near_identical(reply, earlier)
        values = {"near_identical": flag(score) if earlier else None,
                  "distinct_2": novel_ngram_share(reply, earlier)}
        return self.record(sample, values, reply=reply, similarity=score, turn=turn)

    def notes(self, ctx: ProbeContext) -> list[str]:
        return [f"Near-identical = token-sequence similarity ≥ {NEAR_IDENTICAL} (difflib ratio over normalised "
                "words). 'prompts': one reply per suite prompt, compared with the same character's replies to the "
                f"other prompts. 'session': {len(ctx.suite.session_prompts)} scripted lines in one session, each "
                "reply compared with the earlier ones; distinct-2 counts bigrams not used before in the session."]
