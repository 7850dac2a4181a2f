"""The Store: one object over one database URL, hiding SQLAlchemy from the rest of the engine."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import create_engine, delete, event, func, inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rolecraft.characters.cards import card_from_character, character_from_card
from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError, not_found
from rolecraft.store.library import LibraryMixin
from rolecraft.store.records import UNSET, CharacterInfo, NewMessage, SessionInfo, StoredMessage, Unset
from rolecraft.store.tables import SCHEMA_VERSION, Base, CharacterRow, MessageRow, SchemaRow, SessionRow


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def slugify(name: str) -> str:
    """A readable id from a name; non-Latin names keep their letters (e.g. '林月')."""
    text = unicodedata.normalize("NFKC", name).strip().lower()
    slug = re.sub(r"[^\w]+", "-", text).strip("-_")
    return slug[:60] or "character"


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


class Store(LibraryMixin):
    """Characters, sessions and message trees in one SQLAlchemy database."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = create_engine(url, future=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise RolecraftError(f"cannot open database {url!r}: {exc}", code="database_error", status=500) from exc
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.migrate()

    def migrate(self) -> None:
        """Create missing tables, bring older ones up to date and record the schema version."""
        Base.metadata.create_all(self.engine)
        self._add_session_owner()
        with self._tx() as db:
            if db.get(SchemaRow, SCHEMA_VERSION) is None:
                db.add(SchemaRow(version=SCHEMA_VERSION))

    def _add_session_owner(self) -> None:
        """Version 1 → 2: sessions gained an `owner` (API key id) column."""
        columns = {column["name"] for column in inspect(self.engine).get_columns("sessions")}
        if "owner" in columns:
            return
        with self.engine.begin() as conn:
            conn.execute(text("ALTER TABLE sessions ADD COLUMN owner VARCHAR(16)"))
            conn.execute(text("CREATE INDEX ix_sessions_owner ON sessions (owner)"))

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as db, db.begin():
            yield db

    def close(self) -> None:
        self.engine.dispose()

    # characters -------------------------------------------------------------

    def put_character(self, character: Character, *, char_id: str | None = None, source: str = "import") -> str:
        """Store a character (replacing one with the same id) and return its id."""
        card = card_from_character(character)
        with self._tx() as db:
            cid = char_id or self._free_id(db, slugify(character.name))
            row = db.get(CharacterRow, cid)
            if row is None:
                db.add(CharacterRow(id=cid, name=character.name, card=card, avatar=character.avatar,
                                    source=source, created_at=_now()))
            else:
                row.name, row.card, row.avatar, row.source = character.name, card, character.avatar, source
        return cid

    @staticmethod
    def _free_id(db: Session, base: str) -> str:
        taken = set(db.scalars(select(CharacterRow.id).where(CharacterRow.id.like(f"{base}%"))))
        if base not in taken:
            return base
        n = 2
        while f"{base}-{n}" in taken:
            n += 1
        return f"{base}-{n}"

    def get_character(self, char_id: str) -> Character:
        with self._tx() as db:
            row = db.get(CharacterRow, char_id)
            if row is None:
                raise not_found("character", char_id)
            character = character_from_card(row.card, source=f"stored character {char_id}")
            return character.model_copy(update={"avatar": row.avatar})

    def install_samples(self) -> None:
        """Put the bundled sample characters in the library once (user edits are not overwritten)."""
        from rolecraft.characters.io import load_character_file
        from rolecraft.characters.samples import sample_paths

        for path in sample_paths():
            if not self.has_character(path.stem):
                self.put_character(load_character_file(path), char_id=path.stem, source="sample")

    def has_character(self, char_id: str) -> bool:
        with self._tx() as db:
            return db.get(CharacterRow, char_id) is not None

    def list_characters(self) -> list[CharacterInfo]:
        with self._tx() as db:
            rows = db.execute(
                select(CharacterRow.id, CharacterRow.name, CharacterRow.source, CharacterRow.created_at)
                .order_by(CharacterRow.id)
            ).all()
        return [CharacterInfo(*row) for row in rows]

    def delete_character(self, char_id: str) -> None:
        """Delete a character and all its sessions."""
        with self._tx() as db:
            if db.get(CharacterRow, char_id) is None:
                raise not_found("character", char_id)
            session_ids = select(SessionRow.id).where(SessionRow.character_id == char_id)
            db.execute(delete(MessageRow).where(MessageRow.session_id.in_(session_ids)))
            db.execute(delete(SessionRow).where(SessionRow.character_id == char_id))
            db.execute(delete(CharacterRow).where(CharacterRow.id == char_id))

    # sessions ---------------------------------------------------------------

    def create_session(
        self, char_id: str, *, user_name: str, persona: str = "", greetings: Sequence[NewMessage] = (),
        chosen: int = 0, owner: str | None = None,
    ) -> SessionInfo:
        """Open a session in one transaction; greetings become sibling roots (swipes), `chosen` is the head.
        `owner` is the API key id the session belongs to (None: the local user)."""
        now = _now()
        sid = uuid.uuid4().hex[:16]
        with self._tx() as db:
            if db.get(CharacterRow, char_id) is None:
                raise not_found("character", char_id)
            db.add(SessionRow(id=sid, character_id=char_id, title="", user_name=user_name, persona=persona,
                              head_id=None, created_at=now, updated_at=now, owner=owner))
            db.flush()
            roots = [self._append(db, sid, None, [g])[0].id for g in greetings]
            if roots:
                db.get(SessionRow, sid).head_id = roots[min(max(chosen, 0), len(roots) - 1)]
        return self.get_session(sid)

    def get_session(self, session_id: str) -> SessionInfo:
        with self._tx() as db:
            row = db.get(SessionRow, session_id)
            if row is None:
                raise not_found("session", session_id)
            return self._session_info(db, row)

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
        with self._tx() as db:
            row = db.scalars(
                select(SessionRow).where(SessionRow.character_id == char_id)
                .order_by(SessionRow.updated_at.desc(), SessionRow.id).limit(1)
            ).first()
            return None if row is None else self._session_info(db, row)

    def delete_session(self, session_id: str) -> None:
        with self._tx() as db:
            if db.get(SessionRow, session_id) is None:
                raise not_found("session", session_id)
            db.execute(update(SessionRow).where(SessionRow.id == session_id).values(head_id=None))
            db.execute(delete(MessageRow).where(MessageRow.session_id == session_id))
            db.execute(delete(SessionRow).where(SessionRow.id == session_id))

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
            row = MessageRow(session_id=session_id, parent_id=parent_id, depth=depth + offset, role=msg.role,
                             name=msg.name, content=msg.content, meta=dict(msg.meta), created_at=_now())
            db.add(row)
            db.flush()
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
        with self._tx() as db:
            if leaf_id is None:
                session = db.get(SessionRow, session_id)
                if session is None:
                    raise not_found("session", session_id)
                leaf_id = session.head_id
            if leaf_id is None:
                return []
            leaf = db.get(MessageRow, leaf_id)
            if leaf is None or leaf.session_id != session_id:
                raise not_found("message", str(leaf_id))
            min_depth = 0 if last is None else max(0, leaf.depth - last + 1)
            chain = select(MessageRow.id, MessageRow.parent_id).where(MessageRow.id == leaf_id)
            chain = chain.cte("chain", recursive=True)
            parent = select(MessageRow.id, MessageRow.parent_id).join(chain, MessageRow.id == chain.c.parent_id)
            chain = chain.union_all(parent.where(MessageRow.depth >= min_depth))
            rows = db.execute(
                select(*_COLUMNS).where(MessageRow.id.in_(select(chain.c.id))).order_by(MessageRow.depth)
            )
            return [StoredMessage(*row) for row in rows]

    def update_meta(self, message_id: int, changes: dict) -> StoredMessage:
        """Merge `changes` into a message's meta (e.g. the user's edit of the tracked state)."""
        with self._tx() as db:
            row = db.get(MessageRow, message_id)
            if row is None:
                raise not_found("message", str(message_id))
            row.meta = {**(row.meta or {}), **changes}
            return _stored(row)

    def all_messages(self, session_id: str) -> list[StoredMessage]:
        """Every message of a session (all branches), in tree order by id."""
        with self._tx() as db:
            query = select(MessageRow).where(MessageRow.session_id == session_id).order_by(MessageRow.id)
            return [_stored(row) for row in db.scalars(query)]

    def path_ids(self, session_id: str, leaf_id: int) -> set[int]:
        """Ids of every message from the root to `leaf_id` (branch membership tests)."""
        with self._tx() as db:
            chain = select(MessageRow.id, MessageRow.parent_id).where(MessageRow.id == leaf_id)
            chain = chain.cte("ids", recursive=True)
            chain = chain.union_all(
                select(MessageRow.id, MessageRow.parent_id).join(chain, MessageRow.id == chain.c.parent_id))
            return set(db.scalars(select(chain.c.id)))

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
            db.execute(delete(MessageRow).where(MessageRow.id.in_(ids)))


_COLUMNS = (MessageRow.id, MessageRow.session_id, MessageRow.parent_id, MessageRow.depth, MessageRow.role,
            MessageRow.name, MessageRow.content, MessageRow.created_at, MessageRow.meta)


def _stored(row: MessageRow) -> StoredMessage:
    return StoredMessage(row.id, row.session_id, row.parent_id, row.depth, row.role, row.name, row.content,
                         row.created_at, dict(row.meta or {}))
