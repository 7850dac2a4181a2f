"""KV states of prompt prefixes kept on disk, so a new chat with a character starts at once.

Every new session of a character begins with the same tokens: the system prompt,
the card, the example dialogue, constant lore and the greeting. Their KV state is
computed once, saved here, and restored the next time any session (in any
process sharing the folder) starts with those tokens; llama.cpp then evaluates
only the rest of the prompt.

An entry is named by its scope (model file, adapter version, chat template,
context size) and the hash of its tokens, so a card edit, a retrained adapter or
another model simply never finds the old entry; old entries go when the folder
passes its byte budget, least recently used first.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rolecraft.backends.kv_cache import Snapshot
from rolecraft.files import atomic_write
from rolecraft.messages import Message

# Message kinds (from the context builder) that are the same in every new session of a character.
STABLE_KINDS = frozenset({"definition", "examples"})
MIN_TOKENS = 32  # shorter prefixes are cheaper to evaluate than to load
FORMAT = b"seq0"  # what a snapshot holds (kv_cache.capture: sequence 0's cells); older entries are never found


def stable_count(messages: Sequence[Message]) -> int:
    """How many leading messages every new session of this character shares: the definition and
    examples, then the greeting (assistant messages before the first user message)."""
    count = 0
    while count < len(messages) and messages[count].kind in STABLE_KINDS:
        count += 1
    while count < len(messages) and messages[count].role == "assistant" and messages[count].kind == "history":
        count += 1
    return count


def scope_of(*parts: object) -> str:
    """A short digest of what a KV state depends on besides its tokens."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def model_identity(path: Path) -> str:
    """The model file as a cache key part: its path, size and modification time."""
    info = path.stat()
    return f"{path.resolve()}:{info.st_size}:{info.st_mtime_ns}"


def _token_hash(tokens: Sequence[int]) -> str:
    return hashlib.sha256(FORMAT + np.asarray(tokens, dtype=np.int32).tobytes()).hexdigest()[:32]


class PrefixCache:
    """Snapshots of prefixes in `folder`, named `<scope>-<n tokens>-<token hash>.npz`, within `budget` bytes."""

    def __init__(self, folder: Path, budget: int) -> None:
        self.folder, self.budget = folder, budget
        self.hits = {"hit": 0, "miss": 0, "saved": 0}

    def _path(self, scope: str, tokens: Sequence[int]) -> Path:
        return self.folder / f"{scope}-{len(tokens)}-{_token_hash(tokens)}.npz"

    def _lengths(self, scope: str) -> list[int]:
        """Token counts of this scope's entries, longest first."""
        if not self.folder.is_dir():
            return []
        lengths = set()
        for entry in self.folder.glob(f"{scope}-*.npz"):
            parts = entry.stem.split("-")
            if len(parts) == 3 and parts[1].isdigit():
                lengths.add(int(parts[1]))
        return sorted(lengths, reverse=True)

    def longest(self, scope: str, tokens: Sequence[int], *, longer_than: int = 0) -> Snapshot | None:
        """The snapshot of the longest cached prefix of `tokens` (leaving at least one token to
        evaluate) that is longer than `longer_than` tokens, or None."""
        for n in self._lengths(scope):
            if n <= longer_than:
                break
            if n >= len(tokens):
                continue
            path = self._path(scope, tokens[:n])
            snapshot = _load(path)
            if snapshot is not None and np.array_equal(snapshot.tokens, np.asarray(tokens[:n], dtype=np.int32)):
                os.utime(path)  # recently used: evicted last
                self.hits["hit"] += 1
                return snapshot
        self.hits["miss"] += 1
        return None

    def put(self, scope: str, snapshot: Snapshot) -> None:
        """Save `snapshot` (whose tokens are the prefix) and evict down to the budget."""
        if snapshot.nbytes > self.budget:
            return
        buffer = io.BytesIO()
        np.savez(buffer, tokens=snapshot.tokens, state=snapshot.state)
        with atomic_write(self._path(scope, snapshot.tokens.tolist())) as handle:
            handle.write(buffer.getbuffer())
        self.hits["saved"] += 1
        self._evict()

    def _evict(self) -> None:
        entries = []
        for entry in self.folder.glob("*.npz"):
            try:
                info = entry.stat()
            except OSError:
                continue  # removed by another process meanwhile
            entries.append((info.st_mtime_ns, info.st_size, entry))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries, key=lambda item: item[0]):
            if total <= self.budget:
                break
            entry.unlink(missing_ok=True)
            total -= size


def _load(path: Path) -> Snapshot | None:
    try:
        with np.load(path) as data:
            return Snapshot(tokens=data["tokens"], state=data["state"])
    except (OSError, ValueError, KeyError):
        return None
