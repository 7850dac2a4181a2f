"""End to end on the real bundled model: multi-turn sessions, restarts, swipes, kills.

Greedy decoding and short replies keep these fast and deterministic.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from cli_helpers import EXE, cli_env, rolecraft
from rolecraft.conversation import Engine
from rolecraft.settings import Settings
from rolecraft.store import Store

pytestmark = pytest.mark.slow


def _session_id(output: str) -> str:
    match = re.search(r"\((?:new|resuming) session (\w+)", output)
    assert match, output
    return match.group(1)


def test_conversation_survives_restart(home: Path) -> None:
    first = rolecraft(home, "chat", "--new", stdin="Hi, I'm Mara, a sailor.\nWhat do you sell here?\n")
    assert first.returncode == 0, first.stderr
    sid = _session_id(first.stdout)
    replies = [line for line in first.stdout.splitlines() if line.startswith("Ember: ")]
    assert len(replies) == 3 and all(len(r) > len("Ember: ") for r in replies), first.stdout
    second = rolecraft(home, "chat", "--show-prompt", stdin="Do you remember my name?\n")
    assert second.returncode == 0, second.stderr
    assert _session_id(second.stdout) == sid
    assert "Hi, I'm Mara, a sailor." in second.stderr and "What do you sell here?" in second.stderr
    shown = rolecraft(home, "sessions", "show", sid).stdout
    for text in ("Hi, I'm Mara, a sailor.", "What do you sell here?", "Do you remember my name?"):
        assert text in shown
    store = Store(Settings(home=home).db_url)
    path = store.path(sid)
    assert [m.role for m in path] == ["assistant", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert all(m.meta["completion_tokens"] > 0 for m in path[2::2])


def test_sigkill_mid_reply_leaves_no_partial_turn(home: Path) -> None:
    first = rolecraft(home, "chat", "--new", stdin="Hello!\n")
    sid = _session_id(first.stdout)
    proc = subprocess.Popen([str(EXE), "chat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=cli_env(home, ROLECRAFT_MAX_TOKENS="400"))
    proc.stdin.write(b"Tell me the longest story you know, every detail of it, please.\n")
    proc.stdin.close()
    seen = b""
    while seen.count(b"Ember: ") < 2 or seen.endswith(b"Ember: "):
        byte = proc.stdout.read(1)
        assert byte, f"process ended early: {seen!r}"
        seen += byte
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    store = Store(Settings(home=home).db_url)
    path = store.path(sid)
    assert [m.role for m in path] == ["assistant", "user", "assistant"]
    assert path[1].content == "Hello!"
    assert not any("longest story" in m.content for m in store.all_messages(sid))
    resumed = rolecraft(home, "chat", stdin="Are you still there?\n")
    assert resumed.returncode == 0 and _session_id(resumed.stdout) == sid
    assert [m.role for m in store.path(sid)][-2:] == ["user", "assistant"]


def test_swipe_edit_branch_in_process(settings: Settings) -> None:
    engine = Engine(settings)
    session = engine.new_session("ember")
    first = session.send("Good morning!").text()
    assert first
    again = session.regenerate()
    again.text()
    swipes = session.swipes()
    assert len(swipes) == 2 and swipes[-1].id == session.info.head_id
    edited = session.edit_last_user("Good evening!")
    edited.text()
    history = session.history()
    assert history[-2].content == "Good evening!" and len(history) == 3
    session.branch(history[0].id)
    assert len(session.history()) == 1
    turn = session.send("Hello?")
    for _ in turn:
        break
    assert len(session.history()) == 1, "an abandoned turn must not be stored"
    engine.close()


def test_show_prompt_has_definition_and_budget(settings: Settings) -> None:
    engine = Engine(settings)
    session = engine.new_session("ember")
    plan = session.send("Hi").plan
    rendered = engine.backend.render(plan.messages)
    assert rendered.startswith("<|im_start|>system\nYou are Ember")
    assert rendered.endswith("<|im_start|>assistant\n")
    assert plan.prompt_tokens == engine.backend.count_tokens(plan.messages) <= plan.budget
    engine.close()
