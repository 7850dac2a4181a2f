"""Training data the engine writes itself: teacher dialogues and preference pairs.

`synthesize` has a teacher model (any backend the settings can name; the
bundled one by default) play a library character through the same prompt and
role constraints a chat uses, answering varied role-play openers, and keeps only
replies that stay in character (our out-of-character detector) and are not
empty, too short or repetitive. `pairs_from_samples` makes DPO-style pairs by
setting each in-character reply against what the same model says as a plain
assistant without the card; `pairs_from_store` uses the swipes users made in
chat: the reply they kept is chosen, the ones they regenerated away are rejected.
Everything is seeded, so the same settings give the same data.
"""

from __future__ import annotations

import random
import re
import zlib
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rolecraft.characters.macros import expand_macros
from rolecraft.conversation.planner import as_lines, client_plan
from rolecraft.conversation.reply import Reply
from rolecraft.conversation.sampling import plain_sampling, sampling_for
from rolecraft.errors import RolecraftError
from rolecraft.evaluation.metrics import tokens
from rolecraft.evaluation.similarity import OOC_PHRASES, OOCDetector, make_vectorizer
from rolecraft.messages import Message
from rolecraft.training.data import reasons
from rolecraft.training.render import user_content
from rolecraft.training.samples import PreferencePair, TrainingSample, Turn

if TYPE_CHECKING:
    from rolecraft.characters.model import Character
    from rolecraft.conversation import Engine
    from rolecraft.settings import Settings
    from rolecraft.store import Store
    from rolecraft.store.records import StoredMessage

PLAIN_SYSTEM = "You are a helpful AI assistant."

OPENERS = (
    "Hello, {{char}}! It's good to finally meet you.",
    "*pushes the door open and shakes off the rain* Is this a bad time?",
    "Good morning! Did you sleep well?",
    "Hey there. Mind if I sit with you for a while?",
    "Where did you grow up, {{char}}?",
    "What was your childhood like?",
    "Who taught you everything you know?",
    "What's the hardest thing that ever happened to you?",
    "Do you have any family?",
    "Who is the person you trust most in the world?",
    "Is there anyone you can't stand? Why?",
    "Have you ever been in love?",
    "Do you miss anyone?",
    "What makes you happy?",
    "What are you afraid of?",
    "You look tired today. Is something wrong?",
    "What do you regret most?",
    "What do you dream about doing one day?",
    "Can you help me with something? It's a bit embarrassing.",
    "Could you teach me what you do?",
    "Tell me a story from your past.",
    "I need your advice. A friend of mine lied to me.",
    "Can I ask you a favour? I need somewhere to stay tonight.",
    "*hands you a small wrapped package* I brought you something.",
    "*sits down heavily and stares at the floor* I lost my job today.",
    "*glances around nervously and lowers my voice* I think someone is following me.",
    "*spills a drink all over the table* Oh no, I'm so sorry!",
    "*points out the window* What's going on out there?",
    "Be honest with me: what do you really think of me?",
    "What would you do if you had one day with no duties at all?",
)

FOLLOW_UPS = (
    "Really? Tell me more.",
    "Why do you say that?",
    "How did that make you feel?",
    "I didn't expect that from you.",
    "*nods slowly* Go on.",
    "And what happened after that?",
    "Do you ever talk about this with anyone else?",
    "*smiles* You're full of surprises.",
    "That sounds hard. Are you all right?",
    "What would you do differently now?",
    "*leans closer* Is there something you're not telling me?",
    "Thank you for telling me.",
)


@dataclass
class SynthReport:
    """Dialogues kept, replies rejected by reason, and how many dialogues were cut short by a rejection."""

    samples: list[TrainingSample] = field(default_factory=list)
    attempted: int = 0
    cut_short: int = 0
    dropped: Counter = field(default_factory=Counter)


@dataclass
class PairReport:
    """Preference pairs made, and the candidates dropped by reason."""

    pairs: list[PreferencePair] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)


def teacher_settings(settings: Settings, *, backend: str | None = None, model: str | None = None,
                     base_url: str | None = None) -> Settings:
    """The settings with the teacher's backend, model and server URL where given."""
    changes = {k: v for k, v in {"backend": backend, "model": model, "base_url": base_url}.items() if v}
    return settings.model_copy(update=changes)


def ooc_detector(settings: Settings, method: str = "auto") -> OOCDetector:
    """The evaluation's out-of-character check ('embeddings', 'tfidf' or 'auto'), with the banned phrases."""
    return OOCDetector(make_vectorizer(method), [*OOC_PHRASES, *settings.banned_phrases])


def seed_for(seed: int, key: str) -> int:
    """A sampling seed per generation, from the run seed and what is generated."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % 2**31


def _generate(reply: Reply) -> str:
    for _ in reply:
        pass
    text = reply.text.strip()
    return complete_sentences(text) if reply.finish_reason == "length" else text


def complete_sentences(text: str) -> str:
    """A reply cut off by the token limit, up to its last finished sentence (unchanged if it has none)."""
    ends = [m.end() for m in re.finditer(r"[.!?…。！？]+[\"'”’*)]*(?=\s|$)", text)]
    return text[: ends[-1]].strip() if ends else text


def character_reply(engine: Engine, character: Character, messages: Sequence[Message], *, seed: int) -> str:
    """The character's next reply to a client-held dialogue, as a stateless chat request would get it."""
    settings = engine.settings
    plan = client_plan(settings, engine.builder, character, as_lines(messages), user=settings.user_name,
                       persona=settings.persona, reply_tokens=settings.max_tokens)
    params = sampling_for(settings, character, settings.user_name, seed=seed)
    return _generate(Reply(engine.backend, plan.messages, params, speaker=character.name))


def rejection(text: str, earlier: Collection[str], detector: OOCDetector, *, min_chars: int) -> str | None:
    """Why a synthesised reply is unfit to learn from, or None. `earlier`: replies already kept."""
    if not text:
        return "empty reply"
    if len(text) < min_chars:
        return "too short"
    if " ".join(text.casefold().split()) in earlier:
        return "repeats an earlier reply"
    words = tokens(text)
    if len(words) >= 8 and len(set(words)) / len(words) < 0.4:
        return "repetitive"
    verdict = detector.check(text)
    if verdict.flagged:
        return "out of character (phrase)" if verdict.phrase else "out of character (classifier)"
    return None


def synthesize(engine: Engine, char_id: str, *, n: int = 20, turns: int = 2, seed: int = 0,
               detector: OOCDetector | None = None, min_reply_chars: int = 8) -> SynthReport:
    """`n` dialogues of up to `turns` exchanges with library character `char_id`, played by `engine`'s model.
    A dialogue stops at its first rejected reply and is kept when it has at least one good exchange; a reply
    the run already kept (to any prompt) counts as rejected, since it teaches nothing new."""
    if n < 1 or turns < 1:
        raise RolecraftError("--n and --turns must be at least 1", code="invalid_option", param="n")
    character = engine.character(char_id)
    detector = detector or ooc_detector(engine.settings)
    user = engine.settings.user_name
    rng = random.Random(seed)
    openers = rng.sample(OPENERS, len(OPENERS))
    report = SynthReport(attempted=n)
    kept: set[str] = set()
    for index in range(n):
        follow = rng.sample(FOLLOW_UPS, len(FOLLOW_UPS))
        said = [openers[index % len(openers)], *(follow[k % len(follow)] for k in range(turns - 1))]
        messages: list[Message] = []
        replies: list[str] = []
        for step, line in enumerate(said):
            messages.append(Message("user", expand_macros(line, character.name, user)))
            text = character_reply(engine, character, messages, seed=seed_for(seed, f"{char_id}:{index}:{step}"))
            why = rejection(text, kept, detector, min_chars=min_reply_chars)
            if why:
                report.dropped[why] += 1
                messages.pop()
                report.cut_short += bool(replies)
                break
            messages.append(Message("assistant", text))
            replies.append(text)
            kept.add(" ".join(text.casefold().split()))
        if replies:
            report.samples.append(TrainingSample(
                id=f"synth:{char_id}:{seed}:{index}", character=char_id, user=user,
                source=f"synth:{engine.backend.name}:{engine.settings.model}",
                messages=[Turn(role=m.role, content=m.content) for m in messages]))  # type: ignore[arg-type]
    return report


def plain_reply(engine: Engine, prompt: Sequence[Turn], *, seed: int) -> str:
    """What the model says to the dialogue as a plain assistant, without any character card."""
    messages = [Message("system", PLAIN_SYSTEM), *(Message(t.role, user_content(t)) for t in prompt)]
    return _generate(Reply(engine.backend, messages, plain_sampling(engine.settings, seed=seed)))


def pairs_from_samples(engine: Engine, samples: Sequence[TrainingSample], *, seed: int = 0) -> PairReport:
    """A pair per character reply that answers a user turn: the reply against a plain assistant's answer."""
    report = PairReport()
    for sample in samples:
        for i, turn in enumerate(sample.messages):
            if turn.role != "assistant" or not turn.content.strip():
                continue
            if i == 0 or sample.messages[i - 1].role != "user":
                report.dropped["reply does not answer a user turn"] += 1
                continue
            prompt = sample.messages[:i]
            rejected = plain_reply(engine, prompt, seed=seed_for(seed, f"{sample.id}:{i}"))
            _add_pair(report, f"{sample.id}:{i}", prompt, turn.content, rejected, character=sample.character,
                      profile=sample.profile, user=sample.user, source=sample.source)
    return report


def _add_pair(report: PairReport, pair_id: str, prompt: Sequence[Turn], chosen: str, rejected: str,
              **about: str) -> None:
    """Add the pair unless the rejected reply is empty or the same as the chosen one (counted)."""
    chosen, rejected = chosen.strip(), rejected.strip()
    if not rejected:
        report.dropped["empty rejected reply"] += 1
    elif " ".join(rejected.split()) == " ".join(chosen.split()):
        report.dropped["rejected equals chosen"] += 1
    else:
        report.pairs.append(PreferencePair(id=pair_id, messages=list(prompt), chosen=chosen, rejected=rejected,
                                           **about))


def pairs_from_store(store: Store, *, session_id: str | None = None) -> PairReport:
    """A pair per swipe the user regenerated away: the sibling on the session's current branch is chosen."""
    sessions = [store.get_session(session_id)] if session_id else store.list_sessions()
    report = PairReport()
    for info in sessions:
        _session_pairs(store, info.id, info.character_id, info.user_name, info.head_id, report)
    if not report.pairs:
        why = f" ({reasons(report.dropped)})" if report.dropped else ""
        where = f"session {session_id!r}" if session_id else "the store"
        raise RolecraftError(f"{where} has no regenerated replies (swipes) to make pairs from{why}; regenerate "
                             "replies in chat (/regen) and keep the one you like", code="no_swipes", param="session")
    return report


def _session_pairs(store: Store, session_id: str, char_id: str, user: str, head: int | None,
                   report: PairReport) -> None:
    messages = store.all_messages(session_id)
    by_id = {m.id: m for m in messages}
    groups: dict[int, list[StoredMessage]] = {}
    for m in messages:
        parent = by_id.get(m.parent_id) if m.parent_id is not None else None
        if m.role == "assistant" and parent is not None and parent.role == "user":
            groups.setdefault(parent.id, []).append(m)
    on_branch = store.path_ids(session_id, head) if head is not None else set()
    names = _member_ids(store, session_id, char_id)
    for parent_id, siblings in groups.items():
        if len(siblings) < 2:
            continue
        chosen = next((m for m in siblings if m.id in on_branch), None)
        if chosen is None:
            report.dropped["no swipe selected on the current branch"] += len(siblings)
            continue
        prompt = [_turn(m, chosen.name) for m in store.path(session_id, parent_id)]
        for other in siblings:
            if other.id != chosen.id:
                _add_pair(report, f"{session_id}:{other.id}", prompt, chosen.content, other.content,
                          character=names.get(chosen.name, chosen.name), user=user, source=f"store:{session_id}")


def _member_ids(store: Store, session_id: str, char_id: str) -> dict[str, str]:
    """Character name → library id for everyone who speaks in the session."""
    ids = [char_id, *(m.character_id for m in store.members(session_id))]
    names = {}
    for cid in dict.fromkeys(ids):
        if store.has_character(cid):
            names[store.get_character(cid).name] = cid
    return names


def _turn(message: StoredMessage, speaker: str) -> Turn:
    """A stored message as a training turn; other characters' lines read as said to the speaker."""
    notes = [*message.meta.get("image_notes", []), *([message.meta["audio"]["note"]] if "audio" in message.meta
                                                      else [])]
    observation = "\n".join(notes) or None
    if message.role == "assistant" and message.name == speaker:
        return Turn(role="assistant", content=message.content)
    content = message.content if message.role == "user" else f"{message.name}: {message.content}"
    return Turn(role="user", content=content, observation=observation)
