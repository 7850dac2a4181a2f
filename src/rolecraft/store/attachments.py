"""Attachments: the pictures and recordings users send, as content-addressed blobs beside the messages.

A blob is stored once under the SHA-256 of its bytes, whoever sends it; an
owner link records who may read it (the same 404 as an unknown hash for
anyone else). Messages link blobs through their meta,
`{"attachments": [{"sha256", "kind", "media_type"}]}`; the store mirrors those
links in `message_attachments`, so deleting a session can drop the blobs no
other message links.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rolecraft.errors import RolecraftError, not_found
from rolecraft.store.tables import (
    LOCAL_OWNER,
    AttachmentOwnerRow,
    AttachmentRow,
    MessageAttachmentRow,
    MessageRow,
    SessionRow,
)

KINDS = ("image", "audio")
SHA256_HEX = frozenset("0123456789abcdef")


def owner_key(owner: str | None) -> str:
    """The owner as an owner primary-key column holds it (the local user is "")."""
    return LOCAL_OWNER if owner is None else owner


def linked_attachments(meta: dict) -> list[dict]:
    """The attachment references in a message's meta, checked for shape."""
    links = meta.get("attachments") or []
    if not isinstance(links, list) or not all(isinstance(link, dict) and _is_sha(link.get("sha256"))
                                              for link in links):
        raise RolecraftError("message meta 'attachments' must be a list of {sha256, kind, media_type}",
                             code="invalid_attachment", param="meta.attachments")
    return links


def _is_sha(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= SHA256_HEX


class AttachmentMixin:
    """Store methods for attachments (mixed into `Store`)."""

    def _tx(self) -> AbstractContextManager[Session]:  # provided by Store
        raise NotImplementedError

    def put_attachment(self, data: bytes, media_type: str, kind: str, owner: str | None = None) -> str:
        """Store `data` (once, whoever sends it) readable by `owner`; return its SHA-256 hex."""
        if kind not in KINDS:
            raise RolecraftError(f"an attachment is one of {', '.join(KINDS)}, not {kind!r}",
                                 code="invalid_attachment", param="kind")
        if not data:
            raise RolecraftError("an attachment needs some bytes", code="invalid_attachment", param="data")
        sha = hashlib.sha256(data).hexdigest()
        for attempt in range(2):  # a concurrent put of the same bytes wins the insert: then just link
            try:
                with self._tx() as db:
                    if db.get(AttachmentRow, sha) is None:
                        db.add(AttachmentRow(sha256=sha, media_type=media_type[:100], kind=kind, size=len(data),
                                             data=data, created_at=datetime.now(UTC).replace(tzinfo=None)))
                        db.flush()
                    if db.get(AttachmentOwnerRow, (sha, owner_key(owner))) is None:
                        db.add(AttachmentOwnerRow(sha256=sha, owner=owner_key(owner)))
                return sha
            except IntegrityError:
                if attempt:
                    raise
        return sha

    def get_attachment(self, sha256: str, owner: str | None = None) -> tuple[bytes, str]:
        """(data, media_type) of an attachment `owner` stored; not_found for any other hash."""
        with self._tx() as db:
            if not _is_sha(sha256) or db.get(AttachmentOwnerRow, (sha256, owner_key(owner))) is None:
                raise not_found("attachment", sha256)
            row = db.get(AttachmentRow, sha256)
            return row.data, row.media_type

    def _link_attachments(self, db: Session, session: SessionRow, message: MessageRow) -> None:
        """Record the blobs a new message's meta links; each must be one its session's owner stored."""
        for sha in dict.fromkeys(link["sha256"] for link in linked_attachments(message.meta or {})):
            if db.get(AttachmentOwnerRow, (sha, owner_key(session.owner))) is None:
                raise not_found("attachment", sha)
            db.add(MessageAttachmentRow(message_id=message.id, sha256=sha))

    @staticmethod
    def _unlink_messages(db: Session, message_ids: Iterable[int] | object) -> set[str]:
        """Drop the links of messages about to be deleted; return the hashes they linked."""
        query = select(MessageAttachmentRow.sha256).where(MessageAttachmentRow.message_id.in_(message_ids))
        shas = set(db.scalars(query.distinct()))
        db.execute(delete(MessageAttachmentRow).where(MessageAttachmentRow.message_id.in_(message_ids)))
        return shas

    @staticmethod
    def _collect_attachments(db: Session, shas: set[str], owner: str | None) -> None:
        """After deleting messages: an owner with no message left linking a blob loses it; an unlinked blob goes."""
        for sha in shas:
            still_linked = exists().where(MessageAttachmentRow.sha256 == sha)
            if not db.scalar(select(still_linked)):
                db.execute(delete(AttachmentOwnerRow).where(AttachmentOwnerRow.sha256 == sha))
                db.execute(delete(AttachmentRow).where(AttachmentRow.sha256 == sha))
                continue
            owner_match = SessionRow.owner.is_(None) if owner is None else SessionRow.owner == owner
            owners_link = (select(MessageAttachmentRow.message_id)
                           .join(MessageRow, MessageRow.id == MessageAttachmentRow.message_id)
                           .join(SessionRow, SessionRow.id == MessageRow.session_id)
                           .where(MessageAttachmentRow.sha256 == sha, owner_match))
            if db.scalars(owners_link.limit(1)).first() is None:
                db.execute(delete(AttachmentOwnerRow).where(AttachmentOwnerRow.sha256 == sha,
                                                            AttachmentOwnerRow.owner == owner_key(owner)))
