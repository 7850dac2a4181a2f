"""The Store: one object over one database URL, hiding SQLAlchemy from the rest of the engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import create_engine, delete, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rolecraft.errors import RolecraftError, not_found
from rolecraft.store import migrations
from rolecraft.store.characters import CharacterMixin, slugify
from rolecraft.store.library import LibraryMixin
from rolecraft.store.paths import MessageCache, branch_ids, path_rows, session_query
from rolecraft.store.records import UNSET, NewMessage, SessionInfo, StoredMessage, Unset
from rolecraft.store.tables import MessageRow, SessionRow
from rolecraft.store.text import refuse_nul_in

__all__ = ["Store", "slugify"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


class Store(CharacterMixin, LibraryMixin):
    """Characters, sessions, message trees, personas, lorebooks and attachments in one SQLAlchemy database."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = create_engine(url, future=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise RolecraftError(f"cannot open database {url!r}: {exc}", code="database_error", status=500) from exc
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._messages = MessageCache()
        self.migrate()

    def migrate(self) -> None:
        """Apply the numbered migrations the database lacks (store/migrations)."""
        try:
            migrations.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise RolecraftError(f"cannot bring database {self.engine.url!r} up to date: {exc}",
                                 code="database_error", status=500) from exc

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as db, db.begin():
            yield db

    def close(self) -> None:
        self.engine.dispose()

    # sessions ---------------------------------------------------------------

    def create_session(
        self, char_id: str, *, user_name: str, persona: str = "", greetings: Sequence[NewMessage] = (),
        chosen: int = 0, owner: str | None = None,
    ) -> SessionInfo:
        """Open a session in one transaction; greetings become sibling roots (swipes), `chosen` is the head.
        `owner` is the API key id the session belongs to (None: the local user); `char_id` is an id or a
        unique name of a character that owner can see."""
        refuse_nul_in(user_name=user_name, persona=persona)
        now = _now()
        sid = uuid.uuid4().hex[:16]
        with self._tx() as db:
            char_id = self._character_row(db, char_id, owner).id
            db.add(SessionRow(id=sid, character_id=char_id, title="", user_name=user_name, persona=persona,
                              head_id=None, created_at=now, updated_at=now, owner=owner))
            db.flush()
            roots = [self._append(db, sid, None, [g])[0].id for g in greetings]
            if roots:
                db.get(SessionRow, sid).head_id = roots[min(max(chosen, 0), len(roots) - 1)]
        return self.get_session(sid)

    def get_session(self, session_id: str, owner: str | Unset | None = UNSET) -> SessionInfo:
        """The session; with `owner`, only if that owner's (any other gets the 404 of an unknown id)."""
        with self.engine.connect() as conn:
            row = conn.execute(session_query(), {"session": session_id}).first()
        if row is None or not (isinstance(owner, Unset) or row.owner == owner):
            raise not_found("session", session_id)
        return SessionInfo(*row)

    @staticmethod
    def _session_info(db: Session, row: SessionRow) -> SessionInfo:
        count = db.scalar(select(func.count()).select_from(MessageRow).where(MessageRow.session_id == row.id)) or 0
        return SessionInfo(row.id, row.character_id, row.title, row.user_name, row.persona, row.head_id,
                           row.created_at, row.updated_at, count, row.owner)

    def list_sessions(self, char_id: str | None = None, *, owner: str | Unset | None = UNSET) -> list[SessionInfo]:
        """Sessions (of one character, of one owner when given), most recently used first."""
        with self._tx() as db:
            query = select(SessionRow).order_by(SessionRow.updated_at.desc(), SessionRow.id)
            if char_id is not None:
                query = query.where(SessionRow.character_id == char_id)
            if not isinstance(owner, Unset):
                query = query.where(SessionRow.owner.is_(None) if owner is None else SessionRow.owner == owner)
            return [self._session_info(db, row) for row in db.scalars(query)]

    def latest_session(self, char_id: str) -> SessionInfo | None:
        """The most recently used session with the character `char_id` names (an id or a unique name)."""
        with self._tx() as db:
            char_id = self._character_row(db, char_id, UNSET).id
            row = db.scalars(
                select(SessionRow).where(SessionRow.character_id == char_id)
                .order_by(SessionRow.updated_at.desc(), SessionRow.id).limit(1)
            ).first()
            return None if row is None else self._session_info(db, row)

    def delete_session(self, session_id: str, owner: str | Unset | None = UNSET) -> None:
        """Delete a session (with `owner`: only that owner's) and the attachments no other message links."""
        with self._tx() as db:
            row = db.get(SessionRow, session_id)
            if row is None or not (isinstance(owner, Unset) or row.owner == owner):
                raise not_found("session", session_id)
            session_owner = row.owner
            shas = self._unlink_messages(db, select(MessageRow.id).where(MessageRow.session_id == session_id))
            db.execute(update(SessionRow).where(SessionRow.id == session_id).values(head_id=None))
            db.execute(delete(MessageRow).where(MessageRow.session_id == session_id))
            db.execute(delete(SessionRow).where(SessionRow.id == session_id))
            self._collect_attachments(db, shas, session_owner)

    # messages ---------------------------------------------------------------

    def append(
        self, session_id: str, parent_id: int | None, messages: Sequence[NewMessage], *,
        expect_head: int | Unset | None = UNSET,
    ) -> list[StoredMessage]:
        """Append a chain of messages under `parent_id` and move the head to the last, atomically.

        With `expect_head`, the append happens only if the session's head is still that message
        (compare-and-set): a writer that planned its turn on a head another writer has since moved
        gets a `session_conflict` error instead of silently forking the conversation.
        """
        with self._tx() as db:
            return self._append(db, session_id, parent_id, messages, expect_head)

    def _append(
        self, db: Session, session_id: str, parent_id: int | None, messages: Sequence[NewMessage],
        expect_head: int | Unset | None = UNSET,
    ) -> list[StoredMessage]:
        session = db.get(SessionRow, session_id, with_for_update=True)
        if session is None:
            raise not_found("session", session_id)
        if not isinstance(expect_head, Unset) and session.head_id != expect_head:
            raise RolecraftError(f"session {session_id!r} changed while this reply was being written; retry",
                                 code="session_conflict", status=409)
        depth = 0
        if parent_id is not None:
            parent = db.get(MessageRow, parent_id)
            if parent is None or parent.session_id != session_id:
                raise not_found("message", str(parent_id))
            depth = parent.depth + 1
        rows = []
        for offset, msg in enumerate(messages):
            refuse_nul_in(content=msg.content, name=msg.name)
            row = MessageRow(session_id=session_id, parent_id=parent_id, depth=depth + offset, role=msg.role,
                             name=msg.name, content=msg.content, meta=dict(msg.meta), created_at=_now())
            db.add(row)
            db.flush()
            self._link_attachments(db, session, row)
            parent_id = row.id
            rows.append(row)
        session.head_id = parent_id
        session.updated_at = _now()
        return [_stored(row) for row in rows]

    def set_head(self, session_id: str, message_id: int | None) -> None:
        """Point the session at another leaf (branch or swipe selection)."""
        with self._tx() as db:
            session = db.get(SessionRow, session_id)
            if session is None:
                raise not_found("session", session_id)
            if message_id is not None:
                msg = db.get(MessageRow, message_id)
                if msg is None or msg.session_id != session_id:
                    raise not_found("message", str(message_id))
            session.head_id = message_id
            session.updated_at = _now()

    def get_message(self, message_id: int) -> StoredMessage:
        with self._tx() as db:
            row = db.get(MessageRow, message_id)
            if row is None:
                raise not_found("message", str(message_id))
            return _stored(row)

    def siblings(self, message_id: int) -> list[StoredMessage]:
        """Messages sharing this message's parent (its swipes), oldest first."""
        msg = self.get_message(message_id)
        with self._tx() as db:
            query = select(MessageRow).where(MessageRow.session_id == msg.session_id)
            query = query.where(
                MessageRow.parent_id == msg.parent_id if msg.parent_id is not None else MessageRow.parent_id.is_(None)
            )
            return [_stored(row) for row in db.scalars(query.order_by(MessageRow.id))]

    def path(self, session_id: str, leaf_id: int | None = None, *, last: int | None = None) -> list[StoredMessage]:
        """Messages from the root (or the `last` N) down to `leaf_id` (default: the head), in order."""
        with self.engine.connect() as conn:
            found = path_rows(conn, self._messages, session_id, leaf_id, last)
            if found:
                return found
            if leaf_id is not None:
                raise not_found("message", str(leaf_id))
            session = conn.execute(select(SessionRow.head_id).where(SessionRow.id == session_id)).first()
            if session is None:
                raise not_found("session", session_id)
            if session.head_id is not None:
                raise not_found("message", str(session.head_id))
            return []

    def update_meta(self, message_id: int, changes: dict) -> StoredMessage:
        """Merge `changes` into a message's meta (e.g. the user's edit of the tracked state)."""
        with self._tx() as db:
            row = db.get(MessageRow, message_id)
            if row is None:
                raise not_found("message", str(message_id))
            row.meta = {**(row.meta or {}), **changes}
            if "attachments" in changes:  # the links follow the meta
                session = db.get(SessionRow, row.session_id)
                dropped = self._unlink_messages(db, [row.id])
                self._link_attachments(db, session, row)
                self._collect_attachments(db, dropped, session.owner)
            return _stored(row)

    def all_messages(self, session_id: str) -> list[StoredMessage]:
        """Every message of a session (all branches), in tree order by id."""
        with self._tx() as db:
            query = select(MessageRow).where(MessageRow.session_id == session_id).order_by(MessageRow.id)
            return [_stored(row) for row in db.scalars(query)]

    def path_ids(self, session_id: str, leaf_id: int) -> set[int]:
        """Ids of every message from the root to `leaf_id` (branch membership tests)."""
        return set(self.branch_ids(session_id, leaf_id))

    def branch_ids(self, session_id: str, leaf_id: int) -> list[int]:
        """Ids of the messages from the root to `leaf_id` of this session, in depth order (index = depth)."""
        with self.engine.connect() as conn:
            return branch_ids(conn, session_id, leaf_id)

    def delete_message(self, message_id: int) -> None:
        """Delete a message and its subtree; the head moves to its parent if it was inside."""
        msg = self.get_message(message_id)
        with self._tx() as db:
            doomed = select(MessageRow.id).where(MessageRow.id == message_id).cte("doomed", recursive=True)
            doomed = doomed.union_all(select(MessageRow.id).join(doomed, MessageRow.parent_id == doomed.c.id))
            ids = set(db.scalars(select(doomed.c.id)))
            session = db.get(SessionRow, msg.session_id)
            if session is not None and session.head_id in ids:
                session.head_id = msg.parent_id
            shas = self._unlink_messages(db, ids)
            db.execute(delete(MessageRow).where(MessageRow.id.in_(ids)))
            self._collect_attachments(db, shas, None if session is None else session.owner)


def _stored(row: MessageRow) -> StoredMessage:
    return StoredMessage(row.id, row.session_id, row.parent_id, row.depth, row.role, row.name, row.content,
                         row.created_at, dict(row.meta or {}))
