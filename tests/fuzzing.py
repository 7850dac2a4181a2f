"""Shared fuzzing for the media decoders: hypothesis settings and mutated copies of valid files."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FLIPS = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8)
CUTS = st.integers(0, 10_000)


def mutate(seed: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    """`seed` with some bytes overwritten and its tail cut off."""
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    return bytes(data[: max(1, len(data) - cut % len(data))])
