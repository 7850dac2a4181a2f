"""Attachments: content-addressed blobs, readable only by who stored them, linked from messages' meta,
and collected when the last message linking them goes. Runs on SQLite or ROLECRAFT_TEST_DATABASE_URL."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import func, select

from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError
from rolecraft.store import Store
from rolecraft.store.records import NewMessage
from rolecraft.store.tables import AttachmentRow


def _blob() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes + bytes(range(256))


def _key() -> str:
    return uuid.uuid4().hex[:12]


def _session(store: Store, owner: str | None) -> str:
    cid = store.put_character(Character(name="Tess", first_mes="Hi."))
    return store.create_session(cid, user_name="U", owner=owner).id


def _say(store: Store, sid: str, sha: str) -> int:
    link = {"sha256": sha, "kind": "image", "media_type": "image/png"}
    head = store.get_session(sid).head_id
    return store.append(sid, head, [NewMessage("user", "U", "", {"attachments": [link]})])[0].id


def _count(store: Store, sha: str) -> int:
    with store.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(AttachmentRow).where(AttachmentRow.sha256 == sha))


def _missing(store: Store, sha: str, owner: str | None) -> RolecraftError:
    with pytest.raises(RolecraftError) as caught:
        store.get_attachment(sha, owner)
    assert caught.value.status == 404 and caught.value.code == "attachment_not_found"
    return caught.value


def test_put_is_idempotent_and_addressed_by_content(store: Store) -> None:
    data, owner = _blob(), _key()
    sha = store.put_attachment(data, "image/png", "image", owner)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.put_attachment(data, "image/png", "image", owner) == sha
    assert _count(store, sha) == 1
    assert store.get_attachment(sha, owner) == (data, "image/png")


def test_only_owners_read_and_others_get_the_unknown_hash_404(store: Store) -> None:
    data, alice, bob = _blob(), _key(), _key()
    sha = store.put_attachment(data, "image/png", "image", alice)
    foreign = _missing(store, sha, bob)
    unknown = _missing(store, hashlib.sha256(b"nothing").hexdigest(), bob)
    assert (foreign.code, foreign.status, foreign.param) == (unknown.code, unknown.status, unknown.param)
    _missing(store, sha, None)  # the local user is an owner like any other
    assert store.put_attachment(data, "image/png", "image", bob) == sha  # sending the same bytes grants them
    assert store.get_attachment(sha, bob)[0] == data and _count(store, sha) == 1


def test_bad_attachments_are_refused(store: Store) -> None:
    with pytest.raises(RolecraftError, match="one of image, audio"):
        store.put_attachment(b"x", "video/mp4", "video")
    with pytest.raises(RolecraftError, match="needs some bytes"):
        store.put_attachment(b"", "image/png", "image")
    _missing(store, "not-a-hash", None)


def test_messages_link_only_blobs_their_owner_stored(store: Store) -> None:
    alice, bob = _key(), _key()
    sha = store.put_attachment(_blob(), "image/png", "image", alice)
    bobs = _session(store, bob)
    before = store.get_session(bobs).message_count
    with pytest.raises(RolecraftError) as caught:
        _say(store, bobs, sha)
    assert caught.value.code == "attachment_not_found"
    assert store.get_session(bobs).message_count == before
    with pytest.raises(RolecraftError, match="must be a list"):
        store.append(bobs, None, [NewMessage("user", "U", "x", {"attachments": [{"sha256": "zz"}]})])


def test_deleting_sessions_keeps_blobs_still_linked_and_drops_the_rest(store: Store) -> None:
    owner = _key()
    sha = store.put_attachment(_blob(), "image/png", "image", owner)
    first, second = _session(store, owner), _session(store, owner)
    _say(store, first, sha)
    _say(store, second, sha)
    store.delete_session(first)
    assert store.get_attachment(sha, owner)[1] == "image/png"
    store.delete_session(second)
    _missing(store, sha, owner)
    assert _count(store, sha) == 0


def test_an_owner_loses_a_shared_blob_with_its_last_link(store: Store) -> None:
    data, alice, bob = _blob(), _key(), _key()
    sha = store.put_attachment(data, "image/png", "image", alice)
    store.put_attachment(data, "image/png", "image", bob)
    alices, bobs = _session(store, alice), _session(store, bob)
    _say(store, alices, sha)
    _say(store, bobs, sha)
    store.delete_session(alices)
    _missing(store, sha, alice)
    assert store.get_attachment(sha, bob)[0] == data


def test_deleting_a_message_or_replacing_meta_collects_too(store: Store) -> None:
    owner = _key()
    first = store.put_attachment(_blob(), "audio/wav", "audio", owner)
    second = store.put_attachment(_blob(), "image/png", "image", owner)
    sid = _session(store, owner)
    message = _say(store, sid, first)
    store.update_meta(message, {"attachments": [{"sha256": second, "kind": "image", "media_type": "image/png"}]})
    _missing(store, first, owner)
    assert store.get_attachment(second, owner)[1] == "image/png"
    store.delete_message(message)
    _missing(store, second, owner)


def test_deleting_a_character_collects_its_sessions_blobs(store: Store) -> None:
    sha = store.put_attachment(_blob(), "image/png", "image", None)
    sid = _session(store, None)
    _say(store, sid, sha)
    store.delete_character(store.get_session(sid).character_id)
    _missing(store, sha, None)
