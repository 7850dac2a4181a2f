"""Small helpers shared by the benchmark scripts (statistics and a throwaway rolecraft home)."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from rolecraft.settings import Settings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def temp_settings(**overrides: object) -> Settings:
    """Settings on a fresh temporary home, so benchmarks never touch the user's data."""
    home = Path(tempfile.mkdtemp(prefix="rolecraft-bench-"))
    return Settings(home=home, **overrides)
