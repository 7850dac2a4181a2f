"""SQLAlchemy table definitions: the schema the newest migration (store/migrations/versions) leaves.

Change a table here and add a numbered revision there; `Store` upgrades every database on open.
Owners: sessions and characters keep a nullable API key id (None: the local user); tables whose
primary key includes the owner (personas, lorebooks, attachment links) store the local user as "".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LOCAL_OWNER = ""  # the local user in an owner primary-key column


class Base(DeclarativeBase):
    pass


class CharacterRow(Base):
    __tablename__ = "characters"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    card: Mapped[dict] = mapped_column(JSON)
    avatar: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    source: Mapped[str] = mapped_column(String(20), default="import")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # The API key that uploaded it; None: shared (bundled samples, the local user's imports).
    owner: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)


class SessionRow(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    character_id: Mapped[str] = mapped_column(String(80), ForeignKey("characters.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    user_name: Mapped[str] = mapped_column(String(64))
    persona: Mapped[str] = mapped_column(Text, default="")
    head_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # The API key that owns the session (None: the local single user, e.g. the CLI).
    owner: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)


class MessageRow(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, index=True
    )
    depth: Mapped[int] = mapped_column(Integer, default=0)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    content: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_messages_session_depth", "session_id", "depth"),)


class ApiKeyRow(Base):
    """A server API key; only the SHA-256 digest of the secret is stored."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    rate_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class PersonaRow(Base):
    """Who the user plays: a name and a description; one may be the default."""

    __tablename__ = "personas"
    owner: Mapped[str] = mapped_column(String(16), primary_key=True, default=LOCAL_OWNER)
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class LorebookRow(Base):
    """A lorebook kept in the library, to attach to any session."""

    __tablename__ = "lorebooks"
    owner: Mapped[str] = mapped_column(String(16), primary_key=True, default=LOCAL_OWNER)
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    book: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class SessionLorebookRow(Base):
    """A standalone lorebook attached to one session."""

    __tablename__ = "session_lorebooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    book: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class SessionMemberRow(Base):
    """A character taking part in a group session, and whether it is in the scene right now."""

    __tablename__ = "session_members"
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"),
                                            primary_key=True)
    character_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    talkativeness: Mapped[float] = mapped_column(Float, default=0.5)
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    present: Mapped[bool] = mapped_column(Boolean, default=True)


class MemoryRow(Base):
    """A remembered exchange with its sentence embedding, for retrieval once it leaves the context."""

    __tablename__ = "memories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(Integer, ForeignKey("messages.id", ondelete="CASCADE"))
    depth: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class AttachmentRow(Base):
    """A picture or recording a user sent, stored once by the SHA-256 of its bytes."""

    __tablename__ = "attachments"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class AttachmentOwnerRow(Base):
    """Who may read an attachment: everyone who stored those bytes."""

    __tablename__ = "attachment_owners"
    sha256: Mapped[str] = mapped_column(String(64), ForeignKey("attachments.sha256", ondelete="CASCADE"),
                                        primary_key=True)
    owner: Mapped[str] = mapped_column(String(16), primary_key=True)


class MessageAttachmentRow(Base):
    """A message's link to an attachment (from its meta), so unlinked blobs can be collected."""

    __tablename__ = "message_attachments"
    message_id: Mapped[int] = mapped_column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), ForeignKey("attachments.sha256", ondelete="CASCADE"),
                                        primary_key=True, index=True)


class RateHitRow(Base):
    """One request counted against a rate limit (server/limits.py), kept for a minute."""

    __tablename__ = "rate_hits"
    __table_args__ = (Index("ix_rate_hits_who_at", "who", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    who: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)
