"""Long-term memory: past exchanges embedded once, retrieved when they matter again.

Each finished turn (the user's words and the reply) is embedded with the bundled
sentence encoder and stored in the database (vectors as float32 blobs, so SQLite
and PostgreSQL need nothing extra). At prompt time the user's new message is
embedded and the most similar exchanges that are no longer in the context, and lie
on the current branch, are offered to the builder within a token budget. Vectors
are kept in memory per session and only new rows are read each turn; the search is one matrix
product over them, masked to this branch's older messages with the branch's ids kept from the
last recall.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rolecraft.store.db import Store
from rolecraft.store.records import StoredMessage


class Growing:
    """An array that grows geometrically at the end, so appending a turn never copies the whole index."""

    def __init__(self, dtype: type) -> None:
        self.dtype, self.used = dtype, 0
        self.buffer: np.ndarray | None = None

    @property
    def view(self) -> np.ndarray:
        return np.zeros(0, dtype=self.dtype) if self.buffer is None else self.buffer[: self.used]

    def add(self, rows: np.ndarray) -> None:
        needed = self.used + len(rows)
        if self.buffer is None or needed > len(self.buffer):
            grown = np.zeros((max(needed, 2 * self.used, 64), *rows.shape[1:]), dtype=self.dtype)
            if self.buffer is not None:
                grown[: self.used] = self.buffer[: self.used]
            self.buffer = grown
        self.buffer[self.used: needed] = rows
        self.used = needed


@dataclass
class SessionVectors:
    """The in-memory index of one session's memories, and the branch its last recall ran on."""

    last_id: int = 0
    texts: list[str] = field(default_factory=list)
    vectors: Growing = field(default_factory=lambda: Growing(np.float32))
    message_ids: Growing = field(default_factory=lambda: Growing(np.int64))
    depths: Growing = field(default_factory=lambda: Growing(np.int64))
    branch: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # message id by depth


class VectorMemory:
    """Remember and recall exchanges for sessions in one store."""

    def __init__(self, store: Store, embed: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.store = store
        self.embed = embed
        self._sessions: dict[str, SessionVectors] = {}

    def remember(self, session_id: str, message_id: int, depth: int, text: str) -> None:
        vector = self.embed([text])[0].astype(np.float32)
        self.store.add_memory(session_id, message_id, depth, text, vector.tobytes())

    def recall(self, session_id: str, query: str, *, before_depth: int, history: Sequence[StoredMessage],
               k: int = 3, min_score: float = 0.3) -> list[str]:
        """Up to `k` remembered exchanges most similar to `query`, older than `before_depth`, on the branch
        that ends with `history` (the recent path, oldest first)."""
        index = self._refresh(session_id)
        if not index.texts or not query.strip() or not history:
            return []
        depths, message_ids = index.depths.view, index.message_ids.view
        eligible = depths < before_depth
        if not eligible.any():
            return []
        branch = self._branch(session_id, index, history)
        eligible &= depths < len(branch)
        eligible[eligible] = branch[depths[eligible]] == message_ids[eligible]
        if not eligible.any():
            return []
        # One thread on purpose: BLAS threads spin and stall when another process holds a core.
        scores = np.einsum("ij,j->i", index.vectors.view, self.embed([query])[0].astype(np.float32))
        scores[~eligible] = -np.inf
        pool = min(k, int(eligible.sum()))
        top = np.argpartition(-scores, pool - 1)[:pool]
        return [index.texts[i] for i in top[np.argsort(-scores[top], kind="stable")] if scores[i] >= min_score]

    def _branch(self, session_id: str, index: SessionVectors, history: Sequence[StoredMessage]) -> np.ndarray:
        """Message ids by depth from the root to history's last message. The last recall's branch is reused
        up to where it meets `history` (a message fixes all its ancestors); otherwise it is read again."""
        first, leaf, known = history[0], history[-1], index.branch
        if len(known) > leaf.depth and known[leaf.depth] == leaf.id:
            branch = known[: leaf.depth + 1]
        elif (len(known) > first.depth and known[first.depth] == first.id
              and leaf.depth - first.depth == len(history) - 1):
            branch = np.concatenate([known[: first.depth], np.fromiter((m.id for m in history), np.int64)])
        else:
            branch = np.asarray(self.store.branch_ids(session_id, leaf.id), dtype=np.int64)
        index.branch = branch
        return branch

    def _refresh(self, session_id: str) -> SessionVectors:
        index = self._sessions.setdefault(session_id, SessionVectors())
        rows = self.store.memories_since(session_id, index.last_id)
        if rows:
            index.vectors.add(np.stack([np.frombuffer(row[4], dtype=np.float32) for row in rows]))
            index.message_ids.add(np.array([row[1] for row in rows], dtype=np.int64))
            index.depths.add(np.array([row[2] for row in rows], dtype=np.int64))
            index.texts.extend(row[3] for row in rows)
            index.last_id = rows[-1][0]
        return index
