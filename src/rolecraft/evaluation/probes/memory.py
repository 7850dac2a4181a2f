"""Multi-turn probes: recalling facts planted many turns ago, not contradicting oneself, tracking state.

Fact recall plants a fact about the user in the first exchange, adds `depth`
unrelated exchanges (scripted, so every configuration sees the same history),
then asks for the fact, with a context window smaller than the history. It
reports two things per depth: whether the fact was still in the assembled
prompt (`turn.plan.messages`) and whether the reply contains it. Memory and
summaries, when they land, should raise the first; the model the second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolecraft.evaluation.context import digest
from rolecraft.evaluation.judge import contradiction_prompt, parse_verdict
from rolecraft.evaluation.metrics import contradicts, mentions
from rolecraft.evaluation.probes.base import MetricSpec, Probe, Record, Sample, SkipSample, flag
from rolecraft.evaluation.state_accuracy import FIELDS, StateTurn, load_turns, score, track_turn
from rolecraft.evaluation.suite import Exchange

if TYPE_CHECKING:
    from rolecraft.evaluation.context import ProbeContext


def scripted(exchanges: list[Exchange]) -> list[tuple[str, str]]:
    return [turn for e in exchanges for turn in (("user", e.user), ("assistant", e.assistant))]


class FactRecallProbe(Probe):
    name = "fact_recall"
    title = "Fact recall across turns"
    group_label = "turn depth"
    metrics = (
        MetricSpec("in_prompt", "fact still in the assembled prompt"),
        MetricSpec("recalled", "reply contains the fact"),
        MetricSpec("recalled_if_in_prompt", "reply contains the fact, when it was in the prompt"),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        spec = ctx.suite.fact_recall
        return None if spec.facts and spec.characters and spec.depths else "the suite has no fact-recall items"

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        spec = ctx.suite.fact_recall
        return [Sample(f"{char_id}|{fact.id}|{depth}", (char_id, fact, depth), str(depth))
                for char_id in spec.characters for fact in spec.facts for depth in sorted(spec.depths)]

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        char_id, fact, depth = sample.item
        spec = ctx.suite.fact_recall
        if depth > len(spec.filler):
            raise SkipSample("not_enough_filler", f"depth {depth} needs {depth} filler exchanges")
        history = [("user", fact.plant), ("assistant", fact.ack), *scripted(spec.filler[:depth])]

        def inspect(plan) -> dict:
            shown = [m.content for m in plan.messages if m.content != fact.question]
            return {"in_prompt": any(mentions(text, fact.answers) for text in shown)}

        extra = {"n_ctx": spec.n_ctx} if spec.n_ctx else None
        reply = ctx.reply(f"recall|{sample.id}", char_id, fact.question, history=history, extra=extra,
                          inspect=inspect)
        recalled = mentions(reply["text"], fact.answers) is not None
        values = {"in_prompt": flag(reply["in_prompt"]), "recalled": flag(recalled),
                  "recalled_if_in_prompt": flag(recalled) if reply["in_prompt"] else None}
        return self.record(sample, values, reply=reply["text"], prompt_tokens=reply["prompt_tokens"],
                           dropped_messages=reply["dropped_messages"], history_messages=len(history) + 1)

    def notes(self, ctx: ProbeContext) -> list[str]:
        spec = ctx.suite.fact_recall
        window = spec.n_ctx or ctx.settings.n_ctx
        return [f"Depth = unrelated exchanges between planting and asking; context window {window} tokens for "
                "this probe, smaller than the longest history, so old turns must be dropped or remembered."]


class CoherenceProbe(Probe):
    name = "coherence"
    title = "Multi-turn coherence"
    metrics = (
        MetricSpec("contradiction", "replies contradicting the character's earlier words", higher_is_better=False),
        MetricSpec("contradiction_heuristic", "… by the negation-flip heuristic (weak)", higher_is_better=False),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        return None if ctx.suite.coherence else "the suite has no coherence items"

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        return [Sample(item.id, item) for item in ctx.suite.coherence]

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        item = sample.item
        name = ctx.character(item.character).name
        reply = ctx.reply(f"coherence|{item.id}", item.character, item.probe, history=scripted(item.history))["text"]
        earlier = [e.assistant for e in item.history]
        flipped = contradicts(earlier, reply)
        listed = mentions(reply, item.contradictions)
        heuristic = flag(flipped or listed)
        record = self.record(sample, {"contradiction": heuristic, "contradiction_heuristic": heuristic}, reply=reply,
                             negation_flip=list(flipped) if flipped else None, listed_phrase=listed)
        if ctx.judge is not None:
            answer = ctx.ask_judge(f"coherence|{item.id}", contradiction_prompt(name, earlier, reply))
            verdict = parse_verdict(answer)
            record.details["judge"] = answer
            record.values["contradiction"] = None if verdict is None else flag(verdict == "CONTRADICTION")
            if verdict is None:
                record.failures["contradiction"] = "judge reply without CONTRADICTION/CONSISTENT"
        return record

    def notes(self, ctx: ProbeContext) -> list[str]:
        heuristic = ("negation-flip heuristic (an earlier sentence and a reply sentence share most content words "
                     "but differ in negation) plus the suite's listed contradiction phrases — weak: it misses "
                     "paraphrases and can misfire on sarcasm")
        if ctx.judge is None:
            return [f"No judge configured: 'contradiction' is the {heuristic}."]
        return [f"'contradiction' is the judge's verdict; 'contradiction_heuristic' is the {heuristic}."]


class StateTrackingProbe(Probe):
    name = "state_tracking"
    title = "State tracking accuracy"
    group_label = "language"
    metrics = (
        *(MetricSpec(f, f"{f}: taken as the exchange says, or left unchanged") for f in FIELDS),
        MetricSpec("overall", "every field of every turn"),
        MetricSpec("labelled", "fields a turn says something about"),
    )

    def prepare(self, ctx: ProbeContext) -> str | None:
        return "state_tracking is off" if ctx.settings.state_tracking == "off" else None

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        return [Sample(turn.id, turn, turn.lang) for turn in ctx.suite.state_turns or load_turns()]

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        turn: StateTurn = sample.item
        key = f"state|{turn.id}|{digest(turn.model_dump(mode='json'))}"
        found = ctx.cache.get(key)
        if found is None:
            before, after = track_turn(ctx.settings.state_tracking, ctx.engine().backend, turn)
            found = {"scores": score(turn, before, after), "state": after.model_dump(exclude_defaults=True)}
            ctx.cache.put(key, found)
        scores = found["scores"]
        labelled = [scores[f] for f in scores["labelled"]]
        values = {f: flag(scores[f]) for f in FIELDS} | {
            "overall": sum(scores[f] for f in FIELDS) / len(FIELDS),
            "labelled": sum(labelled) / len(labelled) if labelled else None}
        return self.record(sample, values, state=found["state"], text=turn.user_text)

    def notes(self, ctx: ProbeContext) -> list[str]:
        turns = len(ctx.suite.state_turns or load_turns())
        return [f"Tracker: state_tracking={ctx.settings.state_tracking}, on {turns} labelled exchanges (the suite's, "
                "else evaluation/data/state_turns.jsonl) read from an empty state. A field the turn does not label "
                "must stay unchanged, so inventing costs as much as missing; 'labelled' scores only what changed."]
