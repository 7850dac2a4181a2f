"""Long-term memory: past exchanges embedded once, retrieved when they matter again.

Each finished turn (the user's words and the reply) is embedded with the bundled
sentence encoder and stored in the database (vectors as float32 blobs, so SQLite
and PostgreSQL need nothing extra). At prompt time the user's new message is
embedded and the most similar exchanges that are no longer in the context, and lie
on the current branch, are offered to the builder within a token budget. Vectors
are kept in memory per session and only new rows are read each turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rolecraft.store.db import Store


@dataclass
class SessionVectors:
    """The in-memory index of one session's memories."""

    last_id: int = 0
    message_ids: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    buffer: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    @property
    def matrix(self) -> np.ndarray:
        return self.buffer[: len(self.texts)]

    def add(self, vectors: np.ndarray) -> None:
        """Append rows, growing the buffer geometrically so a new turn never copies the whole index."""
        used, needed = len(self.texts), len(self.texts) + len(vectors)
        if self.buffer.size == 0 or needed > len(self.buffer):
            grown = np.zeros((max(needed, 2 * len(self.buffer), 64), vectors.shape[1]), dtype=np.float32)
            if used:
                grown[:used] = self.buffer[:used]
            self.buffer = grown
        self.buffer[used:needed] = vectors


class VectorMemory:
    """Remember and recall exchanges for sessions in one store."""

    def __init__(self, store: Store, embed: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.store = store
        self.embed = embed
        self._sessions: dict[str, SessionVectors] = {}

    def remember(self, session_id: str, message_id: int, depth: int, text: str) -> None:
        vector = self.embed([text])[0].astype(np.float32)
        self.store.add_memory(session_id, message_id, depth, text, vector.tobytes())

    def recall(self, session_id: str, query: str, *, before_depth: int, on_branch: Callable[[int], bool],
               k: int = 3, min_score: float = 0.3) -> list[str]:
        """Up to `k` remembered exchanges most similar to `query`, older than `before_depth`, on this branch."""
        index = self._refresh(session_id)
        if not index.texts or not query.strip():
            return []
        scores = index.matrix @ self.embed([query])[0]
        pool = min(len(scores), 8 * k + 8)
        top = np.argpartition(-scores, pool - 1)[:pool]
        found = []
        for i in top[np.argsort(-scores[top])]:
            if scores[i] < min_score or len(found) >= k:
                break
            if index.depths[i] < before_depth and on_branch(index.message_ids[i]):
                found.append(index.texts[i])
        return found

    def _refresh(self, session_id: str) -> SessionVectors:
        index = self._sessions.setdefault(session_id, SessionVectors())
        rows = self.store.memories_since(session_id, index.last_id)
        if rows:
            index.add(np.stack([np.frombuffer(row[4], dtype=np.float32) for row in rows]))
            for row_id, message_id, depth, text, _ in rows:
                index.message_ids.append(message_id)
                index.depths.append(depth)
                index.texts.append(text)
                index.last_id = row_id
        return index
