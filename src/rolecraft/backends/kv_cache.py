"""Per-session KV-cache snapshots for llama.cpp, so sessions that take turns don't re-read history.

One llama.cpp context holds one conversation's KV cache at a time. When another
session (another cache key) needs the context, the current one's state is saved
here, and restored when its session comes back: only the new tokens of its turn
are then evaluated. Snapshots live in memory up to a byte budget, spill to disk
up to another, and the least recently used go first.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rolecraft.files import atomic_write

HEADROOM = 1.25  # a captured buffer has room for a few more turns, so the next capture can reuse it


@dataclass
class Snapshot:
    tokens: np.ndarray  # int32 token ids held in the KV cache
    state: np.ndarray  # uint8 llama.cpp context state (KV cells in use)
    spare: bool = False  # nobody else holds it: restore() may recycle its buffer

    @property
    def nbytes(self) -> int:
        held = self.state if self.state.base is None else self.state.base  # the whole buffer stays in memory
        return int(self.tokens.nbytes + held.nbytes)


class Spares:
    """One recycled state buffer. Allocating a fresh buffer of tens of MB costs as much as the copy into
    it (the kernel zeroes every page), and sessions that take turns park and restore the same sizes."""

    def __init__(self) -> None:
        self._buffer: np.ndarray | None = None
        self._lock = threading.Lock()

    def buffer(self, size: int) -> np.ndarray:
        """A buffer of at least `size` bytes: the spare if it is big enough, else a new one with headroom."""
        with self._lock:
            spare, self._buffer = self._buffer, None
        if spare is not None and spare.size >= size:
            return spare
        return np.empty(int(size * HEADROOM) + (1 << 20), dtype=np.uint8)

    def give(self, snapshot: Snapshot) -> None:
        """Keep the buffer of a snapshot that was just restored (the larger, when one is already kept)."""
        buffer = snapshot.state if snapshot.state.base is None else snapshot.state.base
        if not isinstance(buffer, np.ndarray) or buffer.dtype != np.uint8 or buffer.ndim != 1:
            return
        with self._lock:
            if self._buffer is None or self._buffer.size < buffer.size:
                self._buffer = buffer


SPARES = Spares()


def capture(llm: Any) -> Snapshot:
    """Copy the KV cells of the context's sequence 0 (the one llama-cpp-python uses) and the tokens it holds.
    Only the cells, not the whole context state: about half the time to write and to read back."""
    import llama_cpp

    ctx = llm._ctx.ctx
    size = llama_cpp.llama_state_seq_get_size(ctx, 0)
    buffer = SPARES.buffer(size)
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
                                                 size, 0)
    return Snapshot(tokens=np.array(llm.input_ids[: llm.n_tokens], dtype=np.int32), state=buffer[:written])


def restore(llm: Any, snapshot: Snapshot) -> bool:
    """Load a snapshot into the context; False (context reset) if llama.cpp refuses it. A snapshot taken
    from a SnapshotCache is used up: its buffer goes to the next capture."""
    import llama_cpp

    ctx = llm._ctx.ctx
    llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), 0, -1, -1)
    pointer = snapshot.state.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
    loaded = llama_cpp.llama_state_seq_set_data(ctx, pointer, snapshot.state.size, 0) == snapshot.state.size
    if loaded:
        n = len(snapshot.tokens)
        llm.input_ids[:n] = snapshot.tokens
        llm.n_tokens = n
        llm._requires_eval = True
    else:
        llm.reset()
    if snapshot.spare:
        SPARES.give(snapshot)
    return loaded


class SnapshotCache:
    """LRU of snapshots: memory first, then disk, each with its own byte budget."""

    def __init__(self, memory_bytes: int, disk_bytes: int, folder: Path | None) -> None:
        self.memory_bytes, self.disk_bytes = memory_bytes, disk_bytes
        self.folder = folder
        self._memory: OrderedDict[str, Snapshot] = OrderedDict()
        self._disk: OrderedDict[str, int] = OrderedDict()
        self.hits = {"memory": 0, "disk": 0, "miss": 0}

    def put(self, key: str, snapshot: Snapshot) -> None:
        self._drop_disk(key)
        self._memory[key] = snapshot
        self._memory.move_to_end(key)
        while self._memory and sum(s.nbytes for s in self._memory.values()) > self.memory_bytes:
            old_key, old = self._memory.popitem(last=False)
            self._spill(old_key, old)

    def take(self, key: str) -> Snapshot | None:
        """Remove and return the snapshot for `key` (the context will hold it from now on)."""
        if key in self._memory:
            self.hits["memory"] += 1
            return replace(self._memory.pop(key), spare=True)
        if key in self._disk and self.folder is not None:
            path = self._path(key)
            try:
                with np.load(path) as data:
                    snapshot = Snapshot(tokens=data["tokens"], state=data["state"], spare=True)
            except (OSError, ValueError, KeyError):
                snapshot = None
            self._drop_disk(key)
            if snapshot is not None:
                self.hits["disk"] += 1
                return snapshot
        self.hits["miss"] += 1
        return None

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"

    def _spill(self, key: str, snapshot: Snapshot) -> None:
        if self.folder is None or snapshot.nbytes > self.disk_bytes:
            return
        with atomic_write(self._path(key)) as handle:
            np.savez(handle, tokens=snapshot.tokens, state=snapshot.state)
        self._disk[key] = snapshot.nbytes
        while sum(self._disk.values()) > self.disk_bytes:
            self._drop_disk(next(iter(self._disk)))

    def _drop_disk(self, key: str) -> None:
        if self._disk.pop(key, None) is not None:
            self._path(key).unlink(missing_ok=True)
