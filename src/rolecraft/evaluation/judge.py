"""Judge mode: an OpenAI-compatible model scores replies, MMRole-Eval style.

Protocol (after MMRole-Eval): for each of eight metrics the judge sees the
question, the evaluated answer and a reference answer as "Model A" and
"Model B", writes a brief review, then a score pair "(a, b)" from 1 to 10.
The metric is the ratio answer/reference. Which answer is shown first is
randomised per (sample, metric) from the run seed, cancelling position bias
over a run while staying reproducible. Judges write messy text, so
`parse_score_pair` accepts the usual variants and takes the last pair; a reply
without one is a counted parse failure, never a crash.
"""

from __future__ import annotations

import base64
import random
import re
import time
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rolecraft.errors import RolecraftError, missing_extra

MMROLE_METRICS: dict[str, str] = {
    "Instruction Adherence": "Does the response follow the task: speaking directly as {char}, with only words {char} "
                             "would say and no explanatory prefixes or suffixes?",
    "Fluency": "Is the response grammatical and smoothly worded?",
    "Coherency": "Does the response keep a coherent thread with the conversation, without contradicting earlier "
                 "turns or established facts?",
    "Image-Text Relevance": "Is the response closely tied to what the image shows?",
    "Response Accuracy": "Does the response actually answer {other}'s words, or open the conversation sensibly?",
    "Personality Consistency": "Does the response reflect {char}'s personality accurately and fully?",
    "Knowledge Consistency": "Is the response consistent with what {char} knows: experiences, abilities, "
                             "relationships?",
    "Tone Consistency": "Does the response keep {char}'s usual tone, manner and catchphrases, rather than sounding "
                        "like an AI assistant?",
}
IMAGE_METRIC = "Image-Text Relevance"
NO_SCORE = "judge reply without a parsable score pair"
SYSTEM = ("You are an objective, precise evaluator of role-playing and multimodal understanding. "
          "You compare two responses fairly, whatever order they are shown in.")

_NUM = r"(\d{1,2}(?:\.\d+)?)(?:\s*/\s*10(?:\.0+)?)?"
_SEP = r"\s*(?:,|;|\band\b|\bvs\.?|\bversus\b)\s*"
_LABEL = r"(?:[^\d()\[\]\n]{0,24}?)"
_PAIR_PATTERNS = (
    re.compile(rf"[(\[]\s*{_LABEL}{_NUM}{_SEP}{_LABEL}{_NUM}\s*[)\]]", re.IGNORECASE),
    re.compile(rf"scores?\s*\]?\s*[:=]\s*{_NUM}{_SEP}{_NUM}", re.IGNORECASE),
    re.compile(rf"(?:model|response|answer|assistant)\s*(?:a|1)\b\W{{0,6}}(?:score\W{{0,4}})?{_NUM}"
               rf"[\s\S]{{0,300}}?(?:model|response|answer|assistant)\s*(?:b|2)\b\W{{0,6}}(?:score\W{{0,4}})?{_NUM}",
               re.IGNORECASE),
    re.compile(rf"\ba\s*[:=]\s*{_NUM}{_SEP}b\s*[:=]\s*{_NUM}", re.IGNORECASE),
    re.compile(r"(\d{1,2}(?:\.\d+)?)\s*/\s*10\b[\s\S]{0,80}?(\d{1,2}(?:\.\d+)?)\s*/\s*10\b"),
)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[*_`{}]", "", text)


def parse_score_pair(text: str) -> tuple[float, float] | None:
    """The last score pair (each 0–10) in a judge's reply, or None if there is none."""
    clean = _clean(text or "")
    found: list[tuple[int, float, float]] = []
    for pattern in _PAIR_PATTERNS:
        for match in pattern.finditer(clean):
            first, second = float(match.group(1)), float(match.group(2))
            if 0 <= first <= 10 and 0 <= second <= 10:
                found.append((match.end(), first, second))
    if not found:
        return None
    _, first, second = max(found, key=lambda item: item[0])
    return first, second


@dataclass(frozen=True)
class JudgeConfig:
    """Where the judge lives. `weak` marks a judge known to be unreliable (e.g. a tiny local model)."""

    base_url: str
    model: str
    api_key: str = "none"
    max_tokens: int = 384
    timeout_s: float = 120.0
    weak: bool = False

    def public(self) -> dict:
        """What the report records (never the API key)."""
        return {"base_url": self.base_url, "model": self.model, "max_tokens": self.max_tokens, "weak": self.weak}


class Judge:
    """A judge model behind any OpenAI-compatible endpoint, through the `openai` SDK."""

    def __init__(self, config: JudgeConfig, *, seed: int = 0) -> None:
        try:
            import openai
        except ImportError as exc:
            raise missing_extra("openai", "openai") from exc
        self.config = config
        self.seed = seed
        self.seconds = 0.0
        self._errors = openai.OpenAIError
        self._client = openai.OpenAI(base_url=config.base_url, api_key=config.api_key, timeout=config.timeout_s,
                                     max_retries=1)

    def ask(self, prompt: str, *, image: Path | None = None) -> str:
        """The judge's reply to one prompt (greedy); API failures become RolecraftError(code=judge_failed)."""
        content: str | list[dict] = prompt
        if image is not None:
            content = [{"type": "image_url", "image_url": {"url": _data_url(image)}}, {"type": "text", "text": prompt}]
        start = time.perf_counter()
        try:
            answer = self._client.chat.completions.create(
                model=self.config.model, max_tokens=self.config.max_tokens, temperature=0.0, seed=self.seed,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}],
            )
        except self._errors as exc:
            raise RolecraftError(f"judge request failed: {exc}", code="judge_failed", status=502,
                                 type="server_error") from exc
        finally:
            self.seconds += time.perf_counter() - start
        return (answer.choices[0].message.content or "") if answer.choices else ""


def _data_url(path: Path) -> str:
    kind = {".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp"}.get(path.suffix.lower(), "png")
    return f"data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def swapped(seed: int, *parts: str) -> bool:
    """Whether the evaluated answer is shown second: a fair coin fixed by the seed and the parts."""
    return random.Random(zlib.crc32("|".join([str(seed), *parts]).encode())).random() < 0.5


@dataclass(frozen=True)
class JudgeCase:
    """What the judge is told about one sample."""

    character: str
    profile: str
    history: Sequence[tuple[str, str]]
    question: str
    other: str = "the user"


def mmrole_prompt(metric: str, case: JudgeCase, first: str, second: str, *, with_image: bool) -> str:
    """The MMRole-Eval comparison prompt for one metric, answers in the given order."""
    aspect = MMROLE_METRICS[metric].format(char=case.character, other=case.other)
    context = "\n".join(f"{who}: {text}" for who, text in case.history[-6:])
    about = "about the given image " if with_image else ""
    return (
        f"## Character\n{case.character}. {case.profile.strip()[:1500]}\n\n"
        + (f"## Earlier conversation\n{context}\n\n" if context else "")
        + f"## Question\n{case.question}\n\n"
        f"## Model A's response\n{first}\n\n## Model B's response\n{second}\n\n"
        f"## Instruction\nBoth models were asked to role-play as {case.character} and talk with {case.other} "
        f"{about}in {case.character}'s own tone, manner and vocabulary.\n"
        f"Evaluate this aspect of each response:\n{metric}: {aspect}\n\n"
        "Write a brief qualitative comparison of the two responses, then paired scores from 1 to 10 "
        "(1 = poor, 10 = excellent), in this format:\n"
        "{Qualitative Evaluation}, [Scores]: ({score of Model A}, {score of Model B})\n\n"
        "Be unbiased: the order in which the responses are shown must not affect your judgement."
    )


@dataclass(frozen=True)
class PairVerdict:
    """One judged metric: the ratio answer/reference, or the reason there is none."""

    ratio: float | None
    answer_score: float | None
    reference_score: float | None
    swapped: bool
    review: str
    reason: str | None = None


def judge_pair(judge: Judge, metric: str, case: JudgeCase, answer: str, reference: str, *, swap: bool,
               image: Path | None = None) -> PairVerdict:
    """Score `answer` against `reference` on one metric (answer shown second when `swap`)."""
    first, second = (reference, answer) if swap else (answer, reference)
    review = judge.ask(mmrole_prompt(metric, case, first, second, with_image=image is not None), image=image)
    return verdict_from_review(review, swap=swap)


def verdict_from_review(review: str, *, swap: bool) -> PairVerdict:
    """Map a judge's review back to (answer, reference) scores, undoing the position swap."""
    pair = parse_score_pair(review)
    if pair is None:
        return PairVerdict(None, None, None, swap, review, NO_SCORE)
    answer_score, reference_score = (pair[1], pair[0]) if swap else pair
    if reference_score == 0:
        return PairVerdict(None, answer_score, 0.0, swap, review, "judge gave the reference a score of 0")
    return PairVerdict(answer_score / reference_score, answer_score, reference_score, swap, review)


def contradiction_prompt(character: str, earlier: Sequence[str], reply: str) -> str:
    statements = "\n".join(f"- {s}" for s in earlier)
    return (
        f"Earlier in a role-play conversation, {character} said:\n{statements}\n\n"
        f"Later, {character} replied:\n{reply}\n\n"
        f"Does the later reply contradict anything {character} said earlier? Ignore style; judge only facts, "
        "promises and stated intentions. Answer with one word, CONTRADICTION or CONSISTENT, then one sentence why."
    )


def parse_verdict(text: str, options: Sequence[str] = ("CONTRADICTION", "CONSISTENT")) -> str | None:
    """The first of `options` the judge wrote (case-insensitive, whole word), or None."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, options)) + r")\b", re.IGNORECASE)
    match = pattern.search(_clean(text or ""))
    return match.group(1).upper() if match else None


def attribution_prompt(cards: Sequence[tuple[str, str]], reply: str) -> str:
    listing = "\n".join(f"{i}. {summary}" for i, (_, summary) in enumerate(cards, start=1))
    return (
        f"Here are {len(cards)} characters (names hidden as [NAME]):\n{listing}\n\n"
        f"Which one of them most likely wrote this line?\n\"{reply}\"\n\n"
        "Answer with the number only."
    )


def parse_choice(text: str, count: int) -> int | None:
    """The first number 1..count in the judge's answer, as a 0-based index, or None."""
    for match in re.finditer(r"\d+", _clean(text or "")):
        number = int(match.group())
        if 1 <= number <= count:
            return number - 1
    return None


def weak_reasons(config: JudgeConfig, *, parse_failure_rate: float | None, evaluated_models: Sequence[str]
                 ) -> list[str]:
    """Why this judge's numbers deserve little trust (empty when no reason is known)."""
    reasons = ["marked weak by the user (--judge-weak)"] if config.weak else []
    size = re.search(r"(\d+(?:\.\d+)?)\s*([mb])\b", config.model.casefold().replace("-", " ").replace("_", " "))
    if size and (size.group(2) == "m" or float(size.group(1)) < 7):
        reasons.append(f"the judge model name suggests a small model ({size.group(0).strip()})")
    if parse_failure_rate is not None and parse_failure_rate > 0.2:
        reasons.append(f"{parse_failure_rate:.0%} of its replies had no parsable score")
    if config.model in evaluated_models:
        reasons.append("the judge is the model being evaluated")
    return reasons
