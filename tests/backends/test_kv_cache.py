"""Parked KV snapshots spill to disk past the memory budget and come back byte for byte (pure unit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rolecraft.backends.kv_cache import Snapshot, SnapshotCache


def test_a_spilled_snapshot_comes_back_whole_and_leaves_no_file(tmp_path: Path) -> None:
    cache = SnapshotCache(memory_bytes=100, disk_bytes=10_000, folder=tmp_path)
    first = Snapshot(np.arange(10, dtype=np.int32), np.arange(80, dtype=np.uint8))
    cache.put("a", first)
    cache.put("b", Snapshot(np.arange(5, dtype=np.int32), np.arange(70, dtype=np.uint8)))  # "a" spills
    assert len(list(tmp_path.iterdir())) == 1
    back = cache.take("a")
    assert back is not None and cache.hits["disk"] == 1
    assert np.array_equal(back.tokens, first.tokens) and np.array_equal(back.state, first.state)
    assert list(tmp_path.iterdir()) == []
