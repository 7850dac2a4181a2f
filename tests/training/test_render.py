"""The training renderer and chat build the same prompt token for token (real bundled model)."""

from __future__ import annotations

import pytest

from rolecraft.backends import create_backend
from rolecraft.conversation import Engine
from rolecraft.conversation.media import Perceived
from rolecraft.conversation.planner import as_lines, client_plan
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.prompting.template import ChatTemplate
from rolecraft.settings import Settings
from rolecraft.training.render import Renderer
from rolecraft.training.samples import TrainingSample


@pytest.fixture(scope="module")
def backend():
    b = create_backend(Settings(n_ctx=2048, n_threads=2))
    yield b
    b.close()


def _sample(greeting: str, *exchanges: tuple[str, str]) -> TrainingSample:
    turns = [{"role": "assistant", "content": greeting}]
    for user, reply in exchanges:
        turns += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return TrainingSample(id="s1", character="ember", user="Kai", messages=turns)


def test_prompt_equals_the_chat_api_prompt(backend, settings: Settings) -> None:
    engine = Engine(settings, backend=backend)
    ember = engine.character("ember")
    sample = _sample("Welcome, traveller.", ("Hi!", "Sparks fly. Sit down."), ("Is Kettle Pass open?", "My best."))
    renderer = Renderer(backend, lambda cid: engine.character(cid), settings)
    encoded = renderer.encode(sample)
    history = [Message(t.role, t.content) for t in sample.messages[:-1]]
    plan = client_plan(settings, engine.builder, ember, as_lines(history), user="Kai", reply_tokens=settings.max_tokens)
    assert encoded.ids[: encoded.prompt_len] == backend.prompt_tokens(plan.messages)
    assert any(m.kind == "late" and "high mountain road" in m.content for m in plan.messages)  # card lorebook hit
    reply = backend.tokenize("My best.")
    assert encoded.ids[encoded.prompt_len: encoded.prompt_len + len(reply)] == reply


def test_prompt_equals_a_stored_session_prompt(backend, settings: Settings) -> None:
    quiet = settings.model_copy(update={"state_tracking": "off", "summary": "off", "user_name": "Kai"})
    engine = Engine(quiet, backend=backend)
    session = engine.new_session("ember")
    history = session.history()
    plan, _ = session.plan(history, Perceived("Tell me about the forge."))
    sample = _sample(history[-1].content, ("Tell me about the forge.", "It roars all day."))
    renderer = Renderer(backend, lambda cid: engine.character(cid), quiet)
    encoded = renderer.encode(sample)
    assert encoded.ids[: encoded.prompt_len] == backend.prompt_tokens(plan.messages)


def test_mask_covers_only_the_characters_turns(backend, settings: Settings) -> None:
    engine = Engine(settings, backend=backend)
    sample = _sample("Welcome.", ("Hi!", "Sparks fly."), ("Bye!", "Come back soon."))
    encoded = Renderer(backend, lambda cid: engine.character(cid), settings).encode(sample)
    detok = backend.llm.detokenize
    spans, current = [], []
    for token, on in zip(encoded.ids, encoded.mask, strict=True):
        if on:
            current.append(token)
        elif current:
            spans.append(detok(current, special=True).decode())
            current = []
    if current:
        spans.append(detok(current, special=True).decode())
    assert [s.removesuffix("\n") for s in spans] == ["Welcome.<|im_end|>", "Sparks fly.<|im_end|>",
                                                     "Come back soon.<|im_end|>"]


def test_template_that_is_not_prefix_stable_is_refused() -> None:
    odd = "{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}?{% endif %}"
    template = ChatTemplate(odd, lambda text: [ord(c) for c in text])
    with pytest.raises(RolecraftError, match="cannot be masked"):
        template.training_ids([Message("user", "a"), Message("assistant", "b")])


def test_unknown_character_uses_the_samples_profile(backend, settings: Settings) -> None:
    sample = TrainingSample(id="x", character="Captain Reed", profile="A gruff sea captain.",
                            messages=[{"role": "user", "content": "Ahoy"}, {"role": "assistant", "content": "Aye."}])
    renderer = Renderer(backend, lambda cid: None, settings)
    text = backend.llm.detokenize(renderer.encode(sample).ids).decode()
    assert "You are Captain Reed" in text and "A gruff sea captain." in text


def test_sample_longer_than_the_training_context_is_refused(backend, settings: Settings) -> None:
    engine = Engine(settings, backend=backend)
    sample = _sample("Hello.", ("Hi", "word " * 400))
    renderer = Renderer(backend, lambda cid: engine.character(cid), settings, max_tokens=600)
    with pytest.raises(RolecraftError, match="longer than the 600-token training context"):
        renderer.encode(sample)


def test_only_flagged_assistant_messages_are_learned() -> None:
    template = ChatTemplate(None, lambda text: [ord(c) for c in text])
    messages = [Message("system", "card"), Message("user", "hi"), Message("assistant", "LORE", kind="lore"),
                Message("assistant", "reply", kind="history")]
    ids, mask = template.training_ids(messages, [m.kind == "history" for m in messages])
    learned = "".join(chr(t) for t, m in zip(ids, mask, strict=True) if m)
    assert learned == "reply<|im_end|>\n"
