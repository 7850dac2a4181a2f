"""Reading one branch of a message tree: the recent path in one query, with the window kept decoded.

Every turn reads the recent history from the head up: one recursive query anchored
at the leaf (or the session's head) and bounded by depth, which returns only each
message's id, creation stamp and meta as stored text. A message is immutable apart
from its meta, so one this process has already built is reused while both texts are
unchanged; only new or changed messages are read in full and their JSON parsed. A
change made elsewhere (another replica) is therefore still seen, and an id reused
after a delete carries another stamp. The statements a turn runs (the path, the
session lookup) are built once, so SQLAlchemy compiles them once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Text, bindparam, cast, func, select
from sqlalchemy.engine import Connection

from rolecraft.store.records import StoredMessage
from rolecraft.store.tables import MessageRow, SessionRow

KEPT = 50_000  # messages kept built (a few windows of many sessions)
CHUNK = 500  # ids per IN list (old SQLite allows 999 parameters)
ALL = 1 << 30  # `back` for the whole path

_COLUMNS = (MessageRow.id, MessageRow.session_id, MessageRow.parent_id, MessageRow.depth, MessageRow.role,
            MessageRow.name, MessageRow.content, MessageRow.created_at, MessageRow.meta)


class MessageCache:
    """Messages by id with the stored texts they were built from. Hand-outs are shared: treat them, and
    their meta, as read-only values (as StoredMessage is frozen)."""

    def __init__(self, size: int = KEPT) -> None:
        self.size = size
        self._known: dict[int, tuple[str, str, StoredMessage]] = {}

    def get(self, message_id: int, stamp: str | None, meta: str | None) -> StoredMessage | None:
        known = self._known.get(message_id)
        return known[2] if known is not None and known[0] == (stamp or "") and known[1] == (meta or "") else None

    def put(self, stamp: str, meta: str, message: StoredMessage) -> None:
        if len(self._known) >= self.size:
            self._known.clear()
        self._known[message.id] = (stamp, meta, message)


@lru_cache(maxsize=2)
def _stamps_query(by_leaf: bool) -> Any:
    """(id, stamp, meta text) of the path from a leaf (`:leaf`, or the head of `:session`) up to `:back`
    messages above it, in depth order. Built once: the statement and its compiled form are reused."""
    leaf = bindparam("leaf", type_=Integer) if by_leaf else (
        select(SessionRow.head_id).where(SessionRow.id == bindparam("session")).scalar_subquery())
    chain = select(MessageRow.id, MessageRow.parent_id, (MessageRow.depth - bindparam("back", type_=Integer))
                   .label("low")).where(MessageRow.id == leaf, MessageRow.session_id == bindparam("session"))
    chain = chain.cte("chain", recursive=True)
    up = select(MessageRow.id, MessageRow.parent_id, chain.c.low).join(chain, MessageRow.id == chain.c.parent_id)
    chain = chain.union_all(up.where(MessageRow.depth >= chain.c.low))
    return (select(MessageRow.id, cast(MessageRow.created_at, Text), cast(MessageRow.meta, Text))
            .join(chain, MessageRow.id == chain.c.id).order_by(MessageRow.depth))


def path_rows(conn: Connection, cache: MessageCache, session_id: str, leaf_id: int | None,
              last: int | None) -> list[StoredMessage]:
    """Messages from the root (or the `last` N) down to the leaf, in depth order; [] when no leaf matches."""
    back = ALL if last is None else last - 1
    stamps = conn.execute(_stamps_query(leaf_id is not None),
                          {"leaf": leaf_id, "session": session_id, "back": back}).all()
    found = [cache.get(*row) for row in stamps]
    missing = {row[0]: row for row, message in zip(stamps, found, strict=True) if message is None}
    if not missing:
        return found  # type: ignore[return-value]
    ids, built = list(missing), {}
    for start in range(0, len(ids), CHUNK):
        for row in conn.execute(select(*_COLUMNS).where(MessageRow.id.in_(ids[start: start + CHUNK]))):
            message = built[row[0]] = StoredMessage(*row[:8], dict(row[8] or {}))
            _, stamp, meta = missing[message.id]
            cache.put(stamp or "", meta or "", message)
    if len(built) < len(missing):  # deleted by another process between the two reads: read the path again
        return path_rows(conn, cache, session_id, leaf_id, last)
    return [message or built[row[0]] for row, message in zip(stamps, found, strict=True)]


@lru_cache(maxsize=1)
def session_query() -> Any:
    """A session's SessionInfo fields (with its message count) by `:session`, built once."""
    count = (select(func.count()).select_from(MessageRow).where(MessageRow.session_id == SessionRow.id)
             .scalar_subquery())
    return select(SessionRow.id, SessionRow.character_id, SessionRow.title, SessionRow.user_name, SessionRow.persona,
                  SessionRow.head_id, SessionRow.created_at, SessionRow.updated_at, count,
                  SessionRow.owner).where(SessionRow.id == bindparam("session"))


def branch_ids(db: Connection, session_id: str, leaf_id: int) -> list[int]:
    """Ids of the messages from the root to `leaf_id`, in depth order (index = depth)."""
    chain = select(MessageRow.id, MessageRow.parent_id, MessageRow.depth).where(
        MessageRow.id == leaf_id, MessageRow.session_id == session_id).cte("ids", recursive=True)
    chain = chain.union_all(select(MessageRow.id, MessageRow.parent_id, MessageRow.depth)
                            .join(chain, MessageRow.id == chain.c.parent_id))
    return list(db.scalars(select(chain.c.id).order_by(chain.c.depth)))
