"""Client-held conversations through the one planner (conversation/planner.py) on the real bundled model."""

from __future__ import annotations

import pytest

from rolecraft.conversation import Engine
from rolecraft.conversation.planner import as_lines, client_plan
from rolecraft.conversation.reply import Reply
from rolecraft.conversation.sampling import plain_sampling
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(settings: Settings) -> Engine:
    made = Engine(settings)
    yield made
    made.close()


def test_client_system_messages_follow_the_card_definition(engine: Engine) -> None:
    character = engine.character("ember")
    messages = [Message("system", "Answer in French."), Message("user", "Hello!"),
                Message("assistant", "Bonjour!"), Message("system", "Be brief."), Message("user", "Your name?")]
    plan = client_plan(engine.settings, engine.builder, character, as_lines(messages), user="Mara", reply_tokens=16)
    kinds = [m.kind for m in plan.messages]
    assert kinds[:2] == ["definition", "client_system"] and plan.messages[1].content == "Answer in French."
    history = [(m.role, m.content) for m in plan.messages if m.kind == "history"]
    assert history == [("user", "Hello!"), ("assistant", "Bonjour!"), ("system", "Be brief."), ("user", "Your name?")]
    assert plan.prompt_tokens == engine.backend.count_tokens(plan.messages)
    assert "Mara" in plan.messages[0].content
    with pytest.raises(RolecraftError, match="last message must be the user's"):
        client_plan(engine.settings, engine.builder, character, as_lines(messages[:3]), user="Mara", reply_tokens=16)


def test_reply_streams_and_counts_without_storing(engine: Engine) -> None:
    before = engine.store.list_sessions()
    reply = Reply(engine.backend, [Message("user", "Say hello.")], plain_sampling(engine.settings, max_tokens=5))
    pieces = list(reply)
    assert pieces and reply.text == "".join(pieces)
    assert reply.completion_tokens == 5 and reply.finish_reason == "length" and reply.prompt_tokens > 0
    assert 0 < reply.ttft_s <= reply.total_s
    assert set(reply.meta()) == {"finish_reason", "prompt_tokens", "completion_tokens", "ttft_ms", "total_ms"}
    assert engine.store.list_sessions() == before
