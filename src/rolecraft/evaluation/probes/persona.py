"""Persona probes on replies to the suite's prompts: catchphrases, staying in character, identifiability.

All three share one reply per (character, prompt): the generation is cached under
the same key, so adding a probe costs scoring time, not model time.
"""

from __future__ import annotations

import random
import re
import zlib
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from rolecraft.characters.model import Character
from rolecraft.evaluation.judge import attribution_prompt, parse_choice
from rolecraft.evaluation.metrics import catchphrase_usage
from rolecraft.evaluation.probes.base import MetricSpec, Probe, Record, Sample, flag
from rolecraft.evaluation.probes.reference import dialogue_reply

if TYPE_CHECKING:
    from rolecraft.evaluation.context import ProbeContext


def persona_reply(ctx: ProbeContext, char_id: str, prompt: str) -> str:
    return ctx.reply(f"persona|{char_id}|{prompt}", char_id, prompt)["text"]


def persona_samples(ctx: ProbeContext, prompts: list[str], group: str = "") -> list[Sample]:
    return [Sample(f"{char_id}|{prompt}", (char_id, prompt), group) for char_id in ctx.suite.characters
            for prompt in prompts]


class CatchphraseProbe(Probe):
    name = "catchphrase"
    title = "Catchphrase and lexicon usage"
    metrics = (
        MetricSpec("catchphrase", "replies with a whole catchphrase"),
        MetricSpec("lexicon", "replies with a signature word"),
        MetricSpec("spam", "replies repeating a catchphrase 3+ times", higher_is_better=False),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        return None if ctx.suite.characters and ctx.suite.prompts else "the suite has no characters or prompts"

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        return persona_samples(ctx, ctx.suite.prompts)

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        char_id, prompt = sample.item
        character = ctx.character(char_id)
        reply = persona_reply(ctx, char_id, prompt)
        usage = catchphrase_usage(reply, character.catchphrases, ctx.suite.lexicon.get(char_id, ()))
        values = {"catchphrase": flag(usage.phrase), "lexicon": flag(usage.lexicon), "spam": flag(usage.spam)}
        if not character.catchphrases:
            values["catchphrase"] = values["spam"] = None
        return self.record(sample, values, character=char_id, prompt=prompt, reply=reply)

    def notes(self, ctx: ProbeContext) -> list[str]:
        return ["Whole catchphrases match case- and punctuation-insensitively; signature words come from the "
                "suite's lexicon, else from the catchphrases' own words (4+ letters, CJK bigrams)."]


class OutOfCharacterProbe(Probe):
    name = "ooc"
    title = "Out-of-character replies"
    group_label = "prompt kind"
    metrics = (
        MetricSpec("ooc", "replies out of character", higher_is_better=False),
        MetricSpec("ooc_phrase", "… caught by the phrase list", higher_is_better=False),
        MetricSpec("ooc_classifier", "… caught by the classifier", higher_is_better=False),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        has_prompts = ctx.suite.characters and (ctx.suite.prompts or ctx.suite.ooc_prompts)
        return None if has_prompts or ctx.dialogues else "the suite has no prompts and no dataset was given"

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        samples = persona_samples(ctx, ctx.suite.ooc_prompts, "adversarial")
        samples += persona_samples(ctx, ctx.suite.prompts, "neutral")
        samples += [Sample(d.id, d, "dataset") for d in ctx.dialogues]
        return samples

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        if sample.group == "dataset":
            reply = dialogue_reply(ctx, sample.item)["text"]
        else:
            reply = persona_reply(ctx, *sample.item)
        verdict = ctx.ooc.check(reply)
        values = {"ooc": flag(verdict.flagged), "ooc_phrase": flag(verdict.phrase),
                  "ooc_classifier": flag(verdict.classifier)}
        return self.record(sample, values, reply=reply, phrase=verdict.phrase, classifier_gap=verdict.score)

    def notes(self, ctx: ProbeContext) -> list[str]:
        return [f"Phrase list: {len(ctx.ooc.phrases)} phrases (built-in assistant-speak, refusals and fourth-wall "
                "phrases plus the banned_phrases setting). Classifier: nearest prototype among out-of-character "
                f"and in-character lines by {ctx.vectorizer.method}."]


def _mask(text: str, names: list[str]) -> str:
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(re.escape(name), "[NAME]", text, flags=re.IGNORECASE)
    return text


def _names(character: Character) -> list[str]:
    names = {character.name, character.nickname or "", *character.name.split()}
    return [n for n in names if len(n) >= 2]


def card_chunks(character: Character) -> list[str]:
    """The parts of a card that carry voice and persona, each embedded separately."""
    examples = [line.split(":", 1)[1] for line in character.mes_example.splitlines()
                if line.strip().startswith("{{char}}:")]
    parts = [character.description, character.personality, character.speech_style, character.background,
             *character.catchphrases, *examples]
    return [p.strip() for p in parts if p and p.strip()]


class IdentifiabilityProbe(Probe):
    name = "identifiability"
    title = "Persona identifiability"
    metrics = (
        MetricSpec("attributed", "replies attributed to their own card (similarity)"),
        MetricSpec("judge_attributed", "replies attributed to their own card (judge)"),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        if len(ctx.suite.characters) < 2 or not ctx.suite.prompts:
            return "needs at least two characters and one prompt"
        return None

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        return persona_samples(ctx, ctx.suite.prompts)

    def _cards(self, ctx: ProbeContext) -> tuple[list[str], list[list[str]], list[list[str]]]:
        if "cards" not in ctx.memo:
            characters = [ctx.character(c) for c in ctx.suite.characters]
            names = [_names(c) for c in characters]
            every = [n for group in names for n in group]
            chunks = [[_mask(chunk, every) for chunk in card_chunks(c)] for c in characters]
            ctx.memo["cards"] = (list(ctx.suite.characters), chunks, names)
        return ctx.memo["cards"]

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        char_id, prompt = sample.item
        ids, chunks, names = self._cards(ctx)
        reply = persona_reply(ctx, char_id, prompt)
        masked = _mask(reply, [n for group in names for n in group])
        flat = [chunk for card in chunks for chunk in card]
        sims = ctx.vectorizer.similarity([masked], flat)[0]
        bounds = np.cumsum([0, *map(len, chunks)])
        scores = [float(sims[a:b].mean()) if b > a else -1.0 for a, b in pairwise(bounds)]
        guess = ids[int(np.argmax(scores))]
        values = {"attributed": flag(guess == char_id), "judge_attributed": None}
        record = self.record(sample, values, reply=reply, guess=guess, scores=dict(zip(ids, scores, strict=True)))
        if ctx.judge is not None:
            self._judge(ctx, sample, masked, ids, chunks, record)
        return record

    def _judge(self, ctx: ProbeContext, sample: Sample, masked: str, ids: list[str], chunks: list[list[str]],
               record: Record) -> None:
        order = list(range(len(ids)))
        random.Random(zlib.crc32(f"{ctx.seed}|{sample.id}".encode())).shuffle(order)
        cards = [(ids[i], " ".join(chunks[i][:3])[:500]) for i in order]
        answer = ctx.ask_judge(f"attribution|{sample.id}", attribution_prompt(cards, masked))
        choice = parse_choice(answer, len(cards))
        if choice is None:
            record.failures["judge_attributed"] = "judge reply without a usable choice"
        else:
            record.values["judge_attributed"] = flag(cards[choice][0] == sample.item[0])
            record.details["judge_guess"] = cards[choice][0]

    def baselines(self, ctx: ProbeContext) -> dict[str, float]:
        chance = 1 / max(1, len(ctx.suite.characters))
        return {"attributed": chance, "judge_attributed": chance}

    def notes(self, ctx: ProbeContext) -> list[str]:
        notes = [f"Each reply is attributed to the card it is most similar to ({ctx.vectorizer.method}); "
                 "names are masked in replies and cards, so a reply that says its own name gains nothing. "
                 f"Chance is 1/{len(ctx.suite.characters)}."]
        if ctx.judge is None:
            notes.append("Judge attribution: not run (no judge configured).")
        return notes
