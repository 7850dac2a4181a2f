"""Long-term recall searches only the current branch's older exchanges, however the branch last recalled
on relates to this one (same branch further on, a sibling branch, a message before the window).

The vectors are hand-made unit vectors (a fake encoder isolates the search from the sentence model);
the store is the real one on the database under test.
"""

from __future__ import annotations

import numpy as np

from rolecraft.memory.vectors import VectorMemory
from rolecraft.store import Store
from rolecraft.store.records import NewMessage, StoredMessage

DIM = 8


def _unit(i: int) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[i % DIM] = 1.0
    return vector


def _memory(depth: int) -> np.ndarray:
    """Mostly topic depth % DIM, tilted a little by depth (newer: closer), so no two memories score the same."""
    angle = (120 - depth) * 0.005
    return np.cos(angle) * _unit(depth) + np.sin(angle) * _unit(depth + 1)


class Encoder:
    """Text "topic N ..." → the unit vector N."""

    def __call__(self, texts):
        return np.stack([_unit(int(t.split()[1])) for t in texts])


def _chain(store: Store, sid: str, parent: int | None, count: int, tag: str) -> list[StoredMessage]:
    stored = store.append(sid, parent, [NewMessage("user" if i % 2 == 0 else "assistant", "U", f"{tag} {i}")
                                        for i in range(count)])
    return stored


def _reference(store: Store, sid: str, leaf: int, query: int, before: int) -> list[str]:
    """Brute force: every memory on the branch, older than `before`, best first."""
    on_branch = store.path_ids(sid, leaf)
    rows = [r for r in store.memories_since(sid, 0) if r[1] in on_branch and r[2] < before]
    scored = sorted(rows, key=lambda r: -float(np.frombuffer(r[4], dtype=np.float32) @ _unit(query)))
    return [r[3] for r in scored if float(np.frombuffer(r[4], dtype=np.float32) @ _unit(query)) >= 0.3][:3]


def test_recall_follows_the_branch(store: Store) -> None:
    store.install_samples()
    sid = store.create_session("ember", user_name="U").id
    trunk = _chain(store, sid, None, 40, "trunk")
    left = _chain(store, sid, trunk[-1].id, 30, "left")
    right = _chain(store, sid, trunk[-1].id, 30, "right")
    vectors = VectorMemory(store, Encoder())
    for m in trunk + left + right:
        vector = _memory(m.depth).astype(np.float32).tobytes()
        store.add_memory(sid, m.id, m.depth, f"topic {m.depth % DIM} {m.content}", vector)

    def recall(leaf: StoredMessage, window: int, query: int, before: int) -> list[str]:
        history = store.path(sid, leaf.id, last=window)
        found = vectors.recall(sid, f"topic {query}", before_depth=before, history=history)
        assert found == _reference(store, sid, leaf.id, query, before)
        return found

    assert all("left" in t or "trunk" in t for t in recall(left[-1], 16, 3, 69))
    assert any("left" in t for t in recall(left[-1], 16, 3, 69))
    assert all("right" in t or "trunk" in t for t in recall(right[-1], 16, 3, 69)), "a sibling branch"
    assert all("right" in t or "trunk" in t for t in recall(right[-5], 8, 5, 60)), "earlier on the same branch"
    longer = _chain(store, sid, right[-1].id, 12, "more")
    assert any("right" in t for t in recall(longer[-1], 20, 2, 75)), "the same branch, further on"
    assert all("trunk" in t for t in recall(trunk[20], 8, 4, 20)), "the window starts before the last branch"


def test_a_path_shows_changed_meta_and_rereads_nothing_else(store: Store) -> None:
    store.install_samples()
    sid = store.create_session("ember", user_name="U").id
    messages = _chain(store, sid, None, 10, "line")
    first = store.path(sid)
    again = store.path(sid)
    assert again == first and all(a is b for a, b in zip(again, first, strict=True))  # built once
    store.update_meta(messages[4].id, {"state": {"mood": "glad"}})
    changed = store.path(sid, last=7)
    assert [m.id for m in changed] == [m.id for m in messages[3:]]
    assert changed[1].meta == {"state": {"mood": "glad"}} and changed[0] is first[3]
    store.delete_message(messages[8].id)
    store.append(sid, messages[7].id, [NewMessage("assistant", "E", "a new ending", {"n": 1})])
    tail = store.path(sid, last=2)
    assert [(m.content, m.meta) for m in tail] == [("line 7", {}), ("a new ending", {"n": 1})]
    assert store.path(sid, messages[2].id) == first[:3]
