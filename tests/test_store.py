"""The store's message tree: turns, swipes, branches, deletes, and all-or-nothing writes."""

from __future__ import annotations

import pytest

from rolecraft.characters.model import Character
from rolecraft.errors import RolecraftError
from rolecraft.store import Store
from rolecraft.store.records import NewMessage


def _char(store: Store, name: str = "Tess") -> str:
    return store.put_character(Character(name=name, first_mes="Hi.", alternate_greetings=["Yo."]))


def _turn(store: Store, sid: str, parent: int | None, user: str, reply: str) -> list:
    return store.append(sid, parent, [NewMessage("user", "U", user), NewMessage("assistant", "Tess", reply)])


def test_greetings_are_sibling_roots_and_head_is_chosen(store: Store) -> None:
    cid = _char(store)
    greetings = [NewMessage("assistant", "Tess", "Hi."), NewMessage("assistant", "Tess", "Yo.")]
    info = store.create_session(cid, user_name="U", greetings=greetings, chosen=1)
    path = store.path(info.id)
    assert [m.content for m in path] == ["Yo."]
    assert [m.content for m in store.siblings(path[0].id)] == ["Hi.", "Yo."]


def test_turns_swipes_and_branches(store: Store) -> None:
    cid = _char(store)
    sid = store.create_session(cid, user_name="U", greetings=[NewMessage("assistant", "Tess", "Hi.")]).id
    root = store.path(sid)[0]
    first = _turn(store, sid, root.id, "one", "reply one")
    second = _turn(store, sid, first[1].id, "two", "reply two")
    assert [m.content for m in store.path(sid)] == ["Hi.", "one", "reply one", "two", "reply two"]
    swipe = store.append(sid, second[0].id, [NewMessage("assistant", "Tess", "reply two b")])
    assert [m.content for m in store.siblings(swipe[0].id)] == ["reply two", "reply two b"]
    assert store.path(sid)[-1].content == "reply two b"
    store.set_head(sid, first[1].id)
    _turn(store, sid, first[1].id, "other", "other reply")
    assert [m.content for m in store.path(sid)] == ["Hi.", "one", "reply one", "other", "other reply"]
    assert [m.content for m in store.path(sid, second[1].id)][-1] == "reply two"
    assert [m.depth for m in store.path(sid)] == [0, 1, 2, 3, 4]
    assert [m.content for m in store.path(sid, last=2)] == ["other", "other reply"]


def test_failed_append_writes_nothing(store: Store) -> None:
    cid = _char(store)
    a = store.create_session(cid, user_name="U", greetings=[NewMessage("assistant", "Tess", "Hi.")])
    b = store.create_session(cid, user_name="U", greetings=[NewMessage("assistant", "Tess", "Hi.")])
    foreign = store.path(b.id)[0].id
    with pytest.raises(RolecraftError, match="unknown message"):
        _turn(store, a.id, foreign, "x", "y")
    assert store.get_session(a.id).message_count == 1
    assert store.get_session(a.id).head_id == store.path(a.id)[0].id


def test_delete_message_subtree_moves_head(store: Store) -> None:
    cid = _char(store)
    sid = store.create_session(cid, user_name="U", greetings=[NewMessage("assistant", "Tess", "Hi.")]).id
    root = store.path(sid)[0]
    first = _turn(store, sid, root.id, "one", "r1")
    _turn(store, sid, first[1].id, "two", "r2")
    store.delete_message(first[0].id)
    assert [m.content for m in store.path(sid)] == ["Hi."]
    assert store.get_session(sid).message_count == 1


def test_unknown_ids_are_clear_errors(store: Store) -> None:
    with pytest.raises(RolecraftError, match="unknown character: 'nobody'"):
        store.get_character("nobody")
    with pytest.raises(RolecraftError, match="unknown session"):
        store.get_session("nope")
    with pytest.raises(RolecraftError, match="unknown character"):
        store.create_session("nobody", user_name="U")


def test_character_ids_and_latest_session(store: Store) -> None:
    first, second = _char(store, "Tess Vale"), _char(store, "Tess Vale")
    assert (first, second) == ("tess-vale", "tess-vale-2")
    assert store.put_character(Character(name="林月")) == "林月"
    older = store.create_session(first, user_name="U")
    newer = store.create_session(first, user_name="U")
    assert store.latest_session(first).id == newer.id
    _turn(store, older.id, None, "hello", "hi")
    assert store.latest_session(first).id == older.id
    store.delete_character(first)
    assert store.list_sessions(first) == []
