"""Samplers llama-cpp-python's high-level API lacks, as numpy logits processors.

llama.cpp's server has DRY, XTC and tail-free sampling; `Llama.create_completion`
does not expose them (and tail-free sampling is gone from its sampler chain), and
its logit_bias processor copies the whole vocabulary per token. These processors
run in llama.cpp's custom sampler slot, on raw logits indexed by token id, over
the prompt + generated ids, before the built-in penalties and temperature.
Each is built only when its sampler is on, so decoding with them off costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rolecraft.backends.base import SamplingParams

MAX_DRY_MATCH = 50  # a longer repeat is penalised like this one (keeps base**n finite)
IsBreaker = Callable[[int], bool]


class DryPenalty:
    """DRY ("don't repeat yourself"), as llama.cpp and KoboldCpp define it.

    If the context ends with tokens that already occurred earlier, followed there by token t,
    then t would extend a repeat of length n; for n >= allowed_length its logit loses
    multiplier * base ** (n - allowed_length) (the largest over all earlier occurrences).
    A repeat never spans a sequence breaker (newline, ':', quote, '*' by default)."""

    def __init__(self, multiplier: float, base: float, allowed_length: int, last_n: int,
                 is_breaker: IsBreaker) -> None:
        self.multiplier, self.base, self.allowed = multiplier, base, max(allowed_length, 1)
        self.last_n, self.is_breaker = last_n, is_breaker

    def _tail_length(self, ctx: np.ndarray) -> int:
        """How many tokens at the end of the context follow the last breaker (capped)."""
        n = 0
        for token in ctx[::-1][:MAX_DRY_MATCH]:
            if self.is_breaker(int(token)):
                break
            n += 1
        return n

    def penalties(self, input_ids: np.ndarray) -> dict[int, float]:
        """Token id → penalty for the next token, given the context so far."""
        ctx = input_ids[-self.last_n:] if self.last_n > 0 else input_ids
        if len(ctx) < 2:
            return {}
        tail = self._tail_length(ctx)
        if tail == 0:
            return {}
        end = len(ctx) - 1
        longest: dict[int, int] = {}
        # positions j whose previous token equals the last token: ctx[j] would continue the repeat
        for j in np.flatnonzero(ctx[:-1] == ctx[-1]) + 1:
            n = 1
            while n < tail and j - 1 - n >= 0 and ctx[j - 1 - n] == ctx[end - n]:
                n += 1
            token = int(ctx[j])
            if n >= self.allowed and n > longest.get(token, 0) and not self.is_breaker(token):
                longest[token] = n
        return {t: self.multiplier * self.base ** (n - self.allowed) for t, n in longest.items()}

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        for token, penalty in self.penalties(input_ids).items():
            scores[token] -= penalty
        return scores


class XtcSampler:
    """XTC ("exclude top choices"): with probability `probability`, of the tokens whose probability
    is at least `threshold`, all but the least likely are removed (when there are two or more),
    which steers away from the most predictable continuation without leaving the plausible ones."""

    def __init__(self, probability: float, threshold: float, seed: int | None) -> None:
        self.probability, self.threshold = probability, threshold
        self.rng = np.random.default_rng(seed)

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.threshold > 0.5 or self.rng.random() >= self.probability:
            return scores  # above 0.5 at most one token can pass the threshold: nothing to exclude
        logits = np.asarray(scores, dtype=np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        top = np.flatnonzero(probs >= self.threshold)
        if len(top) >= 2:
            keep = top[np.argmin(probs[top])]
            scores[top[top != keep]] = -np.inf
        return scores


class TailFree:
    """Tail-free sampling (z < 1): cut the tail where the sorted probabilities' curvature flattens."""

    def __init__(self, z: float) -> None:
        self.z = z

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        logits = np.asarray(scores, dtype=np.float64)
        order = np.argsort(-logits)
        probs = np.exp(logits[order] - logits[order[0]])
        probs /= probs.sum()
        curvature = np.abs(np.diff(probs, n=2))
        if curvature.sum() <= 0:
            return scores
        cumulative = np.cumsum(curvature / curvature.sum())
        keep = max(int(np.searchsorted(cumulative, self.z, side="right")) + 1, 1)
        scores[order[keep:]] = -np.inf
        return scores


class LogitBias:
    """Additive bias per token id; -100 keeps a token out, as the OpenAI API defines it."""

    def __init__(self, bias: Mapping[int, float], vocab: int) -> None:
        pairs = [(t, b) for t, b in bias.items() if 0 <= t < vocab]
        self.ids = np.array([t for t, _ in pairs], dtype=np.intp)
        self.bias = np.array([b for _, b in pairs], dtype=np.float32)
        self.ban = self.ids[self.bias <= -100]

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        scores[self.ids] += self.bias
        scores[self.ban] = -np.inf
        return scores


class CountPenalty:
    """OpenAI's frequency and presence penalties over the generated tokens (for backends without them)."""

    def __init__(self, frequency: float, presence: float, prompt_len: int) -> None:
        self.frequency, self.presence, self.prompt_len = frequency, presence, prompt_len

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        ids, counts = np.unique(np.asarray(input_ids[self.prompt_len:], dtype=np.intp), return_counts=True)
        if len(ids):
            scores[ids] -= self.frequency * counts + self.presence
        return scores


Processor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def sampler_processors(params: SamplingParams, vocab: int, context: int,
                       is_breaker: Callable[[tuple[str, ...]], IsBreaker], *, prompt_len: int = 0,
                       counts: bool = False) -> list[Processor]:
    """The processors `params` turns on, in llama.cpp's order: logit_bias, (frequency/presence when
    `counts`: the backend lacks them), DRY, tail-free, XTC. `is_breaker(breakers)` tests a token id."""
    chain: list[Processor] = []
    if params.logit_bias:
        chain.append(LogitBias(params.logit_bias, vocab))
    if counts and (params.frequency_penalty or params.presence_penalty):
        chain.append(CountPenalty(params.frequency_penalty, params.presence_penalty, prompt_len))
    if params.dry_multiplier > 0 and params.dry_penalty_last_n != 0:
        last_n = context if params.dry_penalty_last_n < 0 else params.dry_penalty_last_n
        chain.append(DryPenalty(params.dry_multiplier, params.dry_base, params.dry_allowed_length, last_n,
                                is_breaker(tuple(params.dry_sequence_breakers))))
    if params.tfs_z < 1.0:
        chain.append(TailFree(params.tfs_z))
    if params.xtc_probability > 0:
        chain.append(XtcSampler(params.xtc_probability, params.xtc_threshold, params.seed))
    return chain


def breaker_test(piece: Callable[[int], bytes]) -> Callable[[tuple[str, ...]], IsBreaker]:
    """A factory of "does this token's text contain a DRY sequence breaker?", cached per breaker set."""
    made: dict[tuple[str, ...], IsBreaker] = {}

    def for_breakers(breakers: tuple[str, ...]) -> IsBreaker:
        if breakers not in made:
            words = [b.encode("utf-8") for b in breakers if b]
            made[breakers] = lru_cache(maxsize=65_536)(lambda token: any(w in piece(token) for w in words))
        return made[breakers]

    return for_breakers


@dataclass
class Step:
    """One generated token's place in the model's distribution: the top alternatives and the chosen one."""

    top: list[tuple[int, float]]
    chosen: int | None = None
    chosen_logprob: float | None = None


@dataclass
class LogprobRecorder:
    """Records log-probabilities of the raw model distribution at each step (it must run first).

    The token chosen at one step is seen as the last input id at the next; `close` settles the
    last step with the token the caller saw chosen."""

    top_n: int
    prompt_len: int
    steps: list[Step] = field(default_factory=list)
    _pending: np.ndarray | None = None

    def _settle(self, token: int) -> None:
        if self._pending is not None and self.steps:
            step = self.steps[-1]
            step.chosen, step.chosen_logprob = token, float(self._pending[token])
        self._pending = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if len(input_ids) > self.prompt_len and self.steps:
            self._settle(int(input_ids[-1]))
        logits = np.asarray(scores, dtype=np.float64)
        logprobs = logits - logits.max()
        logprobs -= np.log(np.exp(logprobs).sum())
        top = np.argsort(-logprobs)[: self.top_n] if self.top_n else np.array([], dtype=np.intp)
        self.steps.append(Step([(int(t), float(logprobs[t])) for t in top]))
        self._pending = logprobs
        return scores

    def close(self, last_token: int | None) -> list[Step]:
        """The settled steps; `last_token` is the final sampled token (None: drop the unsettled step)."""
        if last_token is not None:
            self._settle(last_token)
        elif self._pending is not None and self.steps:
            self.steps.pop()
        self._pending = None
        return [s for s in self.steps if s.chosen is not None]
