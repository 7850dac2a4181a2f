"""Bootstrap confidence intervals, so a difference between configurations is not read into noise.

A statistic is a function of an index array into the samples (so corpus-level
metrics such as BLEU resample whole samples, not tokens). Comparisons are
paired: both configurations are resampled with the same indices over the
samples they share, which cancels the variance that comes from the prompts.
Percentile intervals; a fixed seed makes every interval reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap confidence interval over `n` samples."""

    value: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def bootstrap(n: int, statistic: Statistic, *, rounds: int = 1000, seed: int = 0,
              level: float = 0.95) -> Interval | None:
    """Percentile interval of `statistic` over `rounds` resamples of n samples; None when n == 0."""
    if n == 0:
        return None
    value = float(statistic(np.arange(n)))
    if n == 1 or rounds <= 0:
        return Interval(value, value, value, n)
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(rounds)], dtype=float)
    return _interval(value, draws, n, level)


def mean_interval(values: Sequence[float], *, rounds: int = 1000, seed: int = 0,
                  level: float = 0.95) -> Interval | None:
    """Bootstrap interval of the mean (vectorised)."""
    data = np.asarray(values, dtype=float)
    n = len(data)
    if n == 0:
        return None
    value = float(data.mean())
    if n == 1 or rounds <= 0:
        return Interval(value, value, value, n)
    rng = np.random.default_rng(seed)
    draws = data[rng.integers(0, n, (rounds, n))].mean(axis=1)
    return _interval(value, draws, n, level)


def paired_difference(n: int, stat_a: Statistic, stat_b: Statistic, *, rounds: int = 1000, seed: int = 0,
                      level: float = 0.95) -> Interval | None:
    """Interval of stat_a − stat_b where both are computed on the same resampled indices."""
    return bootstrap(n, lambda idx: stat_a(idx) - stat_b(idx), rounds=rounds, seed=seed, level=level)


def _interval(value: float, draws: np.ndarray, n: int, level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(value, float(low), float(high), n)
