"""Ownership in the store: personas, lorebooks, characters and sessions per owner; shared characters
read-only for API keys. Runs on SQLite or ROLECRAFT_TEST_DATABASE_URL."""

from __future__ import annotations

import uuid

import pytest

from rolecraft.characters.model import Character, Lorebook, LorebookEntry
from rolecraft.errors import RolecraftError
from rolecraft.store import Store


def _key() -> str:
    return uuid.uuid4().hex[:12]


def _fails(status: int, call, *args, **kwargs) -> RolecraftError:
    with pytest.raises(RolecraftError) as caught:
        call(*args, **kwargs)
    assert caught.value.status == status, caught.value.message
    return caught.value


def test_personas_are_kept_per_owner(store: Store) -> None:
    alice, bob, pid = _key(), _key(), f"me-{uuid.uuid4().hex[:6]}"
    store.put_persona(pid, "Alice", "Likes maps.", default=True, owner=alice)
    store.put_persona(pid, "Bob", default=True, owner=bob)  # the same id, a different persona
    assert store.get_persona(pid, alice).name == "Alice" and store.get_persona(pid, bob).name == "Bob"
    assert store.default_persona(alice).name == "Alice" and store.default_persona(bob).name == "Bob"
    assert [p.id for p in store.list_personas(alice)] == [pid]
    store.delete_persona(pid, bob)
    assert _fails(404, store.get_persona, pid, bob).code == "persona_not_found"
    assert store.get_persona(pid, alice).description == "Likes maps."
    _fails(404, store.delete_persona, pid, _key())


def test_library_lorebooks_are_kept_per_owner(store: Store) -> None:
    alice, bob = _key(), _key()
    store.put_lorebook("lore", Lorebook(name="A", entries=[LorebookEntry(keys=["a"], content="A's")]), alice)
    assert store.list_lorebooks(bob) == []
    assert _fails(404, store.get_lorebook, "lore", bob).code == "lorebook_not_found"
    _fails(404, store.delete_lorebook, "lore", bob)
    store.put_lorebook("lore", Lorebook(name="B"), bob)
    assert store.get_lorebook("lore", alice).book.entries[0].content == "A's"
    assert [b.name for b in store.list_lorebooks(bob)] == ["B"]


def test_uploaded_characters_belong_to_their_key(store: Store) -> None:
    alice, bob = _key(), _key()
    cid = store.put_character(Character(name="Secret Agent", first_mes="Hi."), owner=alice)
    assert cid in {c.id for c in store.list_characters(alice)}
    assert cid not in {c.id for c in store.list_characters(bob)}
    assert not store.has_character(cid, bob)
    for call in (store.get_character, store.resolve_character, store.delete_character):
        assert _fails(404, call, cid, bob).code == "character_not_found"
    _fails(404, store.put_character, Character(name="Hijack"), char_id=cid, owner=bob)
    _fails(404, store.create_session, cid, user_name="B", owner=bob)
    assert store.get_character(cid, alice).name == "Secret Agent"
    store.delete_character(cid, alice)
    assert not store.has_character(cid)


def test_shared_characters_are_read_only_for_keys(store: Store) -> None:
    store.install_samples()
    bob = _key()
    assert "ember" in {c.id for c in store.list_characters(bob)}
    before = store.get_character("ember", bob)
    changed = before.model_copy(update={"character_book": Lorebook(entries=[LorebookEntry(keys=["x"], content="!")])})
    assert _fails(403, store.put_character, changed, char_id="ember", source="sample", owner=bob).code \
        == "character_read_only"
    _fails(403, store.delete_character, "ember", bob)
    assert store.get_character("ember").character_book == before.character_book
    store.put_character(changed, char_id="ember", source="sample", owner=None)  # the operator may
    assert store.get_character("ember", bob).character_book.entries[0].content == "!"


def test_a_character_in_use_by_others_is_not_deleted(store: Store) -> None:
    alice = _key()
    cid = store.put_character(Character(name="Popular", first_mes="Hi."))
    store.create_session(cid, user_name="A", owner=alice)
    assert _fails(409, store.delete_character, cid, None).code == "character_in_use"
    store.delete_character(cid)  # the trusted local process (CLI) decides for everyone


def test_sessions_answer_only_their_owner(store: Store) -> None:
    alice, bob = _key(), _key()
    cid = store.put_character(Character(name="Tess", first_mes="Hi."))
    sid = store.create_session(cid, user_name="A", owner=alice).id
    assert store.get_session(sid, alice).owner == alice
    assert _fails(404, store.get_session, sid, bob).code == "session_not_found"
    _fails(404, store.get_session, sid, None)
    _fails(404, store.delete_session, sid, bob)
    store.delete_session(sid, alice)
    _fails(404, store.get_session, sid)
