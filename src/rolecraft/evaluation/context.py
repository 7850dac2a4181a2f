"""What a probe runs against: one configuration's engines, a crash-safe cache, the judge, timers.

Replies come from the real turn pipeline (`Engine.new_session` + `session.send`)
in a database of the run's own, so evaluation sessions never mix with the
user's chats. Every finished generation or judgement is appended to a JSONL
cache (flushed and fsynced) before it is used, so a crash or Ctrl-C loses at
most the sample in flight and a rerun resumes where it stopped. Seeds derive
from the run seed and the sample's key, never from the configuration, so every
configuration answers the same prompts with the same seeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rolecraft.backends import Backend, create_backend
from rolecraft.backends.base import SamplingParams, StreamEvent
from rolecraft.characters.model import Character
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.evaluation import capabilities
from rolecraft.evaluation.datasets import DialogueSample
from rolecraft.evaluation.judge import Judge
from rolecraft.evaluation.similarity import OOC_PHRASES, OOCDetector, Vectorizer, make_vectorizer
from rolecraft.evaluation.suite import Suite
from rolecraft.messages import Message
from rolecraft.prompting import PromptPlan
from rolecraft.settings import Settings
from rolecraft.store import Store
from rolecraft.store.records import NewMessage, StoredMessage

PRIVATE_SETTINGS = {"home", "database_url", "api_key"}


@dataclass(frozen=True)
class Configuration:
    """A named set of Settings overrides; the first configuration of a run is the baseline."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


def settings_for(base: Settings, overrides: dict[str, Any], *, what: str) -> Settings:
    """`base` with `overrides` applied and validated like any other settings."""
    try:
        chosen = base.model_dump(exclude={"state_tracking"} - base.model_fields_set)  # per-model defaults follow
        return Settings(**{**chosen, **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise RolecraftError(f"invalid settings in {what}: {problems}", code="invalid_settings") from exc


def public_settings(settings: Settings) -> dict[str, Any]:
    """The settings a report records: everything that shapes replies, never secrets or local paths."""
    return {k: v for k, v in settings.model_dump(mode="json").items() if k not in PRIVATE_SETTINGS}


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()[:16]


class Cache:
    """Append-only JSONL of finished work, keyed. A torn last line (a crash mid-write) is ignored."""

    def __init__(self, path: Path, *, fresh: bool = False) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        self.hits = self.torn = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            path.unlink(missing_ok=True)
        elif path.exists():
            self._load()

    def _load(self) -> None:
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
                self.entries[entry["key"]] = entry["value"]
            except (json.JSONDecodeError, KeyError, TypeError):
                self.torn += 1

    def get(self, key: str) -> Any | None:
        value = self.entries.get(key)
        self.hits += value is not None
        return value

    def put(self, key: str, value: Any) -> None:
        line = json.dumps({"key": key, "value": value}, ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.entries[key] = value


class TimedBackend(Backend):
    """Wraps a backend (created on first use) and adds up the seconds spent inside generation."""

    def __init__(self, factory: Callable[[], Backend]) -> None:
        self._factory = factory
        self._inner: Backend | None = None
        self.seconds = 0.0
        self.calls = 0

    @property
    def inner(self) -> Backend:
        if self._inner is None:
            start = time.perf_counter()
            self._inner = self._factory()
            self.load_seconds = time.perf_counter() - start
        return self._inner

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def capabilities(self):  # type: ignore[override]
        return self.inner.capabilities

    @property
    def context_size(self) -> int:
        return self.inner.context_size

    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        self.calls += 1
        events = iter(self.inner.stream(messages, params))
        while True:
            start = time.perf_counter()
            try:
                event = next(events)
            except StopIteration:
                return
            finally:
                self.seconds += time.perf_counter() - start
            yield event

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return self.inner.count_tokens(messages)

    def count_message(self, message: Message) -> int:
        return self.inner.count_message(message)

    def render(self, messages: Sequence[Message]) -> str:
        return self.inner.render(messages)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)


def remember_history(engine: Engine, session_id: str, stored: Sequence[StoredMessage]) -> None:
    """Scripted history enters long-term memory as a live session's turns do (one entry per exchange),
    so what a probe measures includes recall of exchanges that fell out of the context."""
    if engine.vectors is None:
        return
    for said, answer in pairwise(stored):
        if said.role == "user" and answer.role == "assistant":
            engine.vectors.remember(session_id, answer.id, answer.depth,
                                    f"{said.name}: {said.content}\n{answer.name}: {answer.content}")


class ProbeContext:
    """One configuration under test: engines (per extra overrides), cache, judge, similarity, seeds."""

    def __init__(self, settings: Settings, config: Configuration, suite: Suite, *, cache: Cache, seed: int,
                 dialogues: Sequence[DialogueSample] = (), judge: Judge | None = None,
                 vectorizer: Callable[[], Vectorizer] | None = None, user_db: str | None = None) -> None:
        self.settings, self.config, self.suite, self.cache = settings, config, suite, cache
        self.seed, self.dialogues, self.judge = seed, list(dialogues), judge
        self.user_db = user_db
        self._make_vectorizer = vectorizer
        self._vectorizer: Vectorizer | None = None
        self._ooc: OOCDetector | None = None
        self._engines: dict[str, tuple[Engine, TimedBackend]] = {}
        self._abilities: dict[str, tuple[Any, str | None]] = {}
        self.memo: dict[str, Any] = {}

    # engines and characters -------------------------------------------------

    def engine(self, extra: dict[str, Any] | None = None) -> Engine:
        """The engine for this configuration plus `extra` overrides (e.g. a smaller n_ctx for one probe)."""
        key = digest(extra or {})
        if key not in self._engines:
            settings = settings_for(self.settings, extra or {}, what=f"configuration {self.config.name!r}")
            backend = TimedBackend(lambda: create_backend(settings))
            self._engines[key] = (Engine(settings, backend=backend), backend)
        return self._engines[key][0]

    def character(self, char_id: str) -> Character:
        """A character of the run's store, copied once from the user's own database when it has it (the
        user's edits of a bundled sample, e.g. an attached adapter, are what gets evaluated)."""
        store = self.engine().store
        if self.user_db and f"copied:{char_id}" not in self.memo:
            self.memo[f"copied:{char_id}"] = "1"
            user_store = Store(self.user_db)
            try:
                if user_store.has_character(char_id):
                    store.put_character(user_store.get_character(char_id), char_id=char_id, source="copied")
            finally:
                user_store.close()
        return store.get_character(char_id)

    def dataset_character(self, sample: DialogueSample) -> str:
        """The library character a profile-less sample names (rolecraft training data names card ids),
        else the dataset's character (name + profile) stored under a stable id."""
        if not sample.profile:
            try:
                self.character(sample.character)
                return sample.character
            except RolecraftError:
                pass
        char_id = f"ds-{digest(sample.character, sample.profile)}"
        store = self.engine().store
        if not store.has_character(char_id):
            store.put_character(Character(name=sample.character, description=sample.profile), char_id=char_id,
                                source="dataset")
        return char_id

    def seed_for(self, key: str) -> int:
        return (self.seed * 1_000_003 + zlib.crc32(key.encode())) % 2**31

    # generation -------------------------------------------------------------

    def reply(self, key: str, char_id: str, text: str, *, history: Sequence[tuple[str, str]] = (),
              extra: dict[str, Any] | None = None, image: Path | None = None,
              inspect: Callable[[PromptPlan], dict] | None = None) -> dict:
        """The character's reply to `text` after a scripted `history` of (role, text); cached by key
        (and by the card's content, so editing a character invalidates its cached replies)."""
        if f"card:{char_id}" not in self.memo:
            self.memo[f"card:{char_id}"] = digest(self.character(char_id).model_dump(mode="json"))
        card = self.memo[f"card:{char_id}"]
        # "mem": replies made since scripted history enters long-term memory (older cache entries do not count)
        cache_key = f"reply|{key}|{digest(char_id, card, text, list(history), extra or {}, str(image or ''), 'mem')}"
        cached = self.cache.get(cache_key)
        if cached is not None:
            return cached
        engine = self.engine(extra)
        session = engine.new_session(char_id)
        if history:
            name = session.character.name
            chain = [NewMessage(role, session.user_name if role == "user" else name, said) for role, said in history]
            remember_history(engine, session.id, engine.store.append(session.id, session.info.head_id, chain))
        engine.settings.seed = self.seed_for(key)
        if image is not None:
            send, reason = self.ability("image_turn")
            if send is None:
                raise RolecraftError(reason or "images are not supported", code="capability_missing")
            turn = send(session, text, image)
        else:
            turn = session.send(text)
        reply = turn.text()
        record = {"text": reply, "prompt_tokens": turn.plan.prompt_tokens, "budget": turn.plan.budget,
                  "dropped_messages": turn.plan.dropped_messages,
                  "completion_tokens": turn.result.completion_tokens if turn.result else 0,
                  **(inspect(turn.plan) if inspect else {})}
        self.cache.put(cache_key, record)
        return record

    def ask_judge(self, key: str, prompt: str, *, image: Path | None = None) -> str:
        """The judge's answer to `prompt`, cached by its content."""
        if self.judge is None:
            raise RolecraftError("no judge configured", code="judge_missing")
        cache_key = f"judge|{self.judge.config.model}|{key}|{digest(prompt, str(image or ''))}"
        cached = self.cache.get(cache_key)
        if cached is not None:
            return cached
        answer = self.judge.ask(prompt, image=image)
        self.cache.put(cache_key, answer)
        return answer

    # shared helpers ---------------------------------------------------------

    def ability(self, name: str) -> tuple[Any | None, str | None]:
        if name not in self._abilities:
            self._abilities[name] = capabilities.resolve(name, self.engine())
        return self._abilities[name]

    @property
    def vectorizer(self) -> Vectorizer:
        if self._vectorizer is None:
            self._vectorizer = (self._make_vectorizer or make_vectorizer)()
        return self._vectorizer

    @property
    def ooc(self) -> OOCDetector:
        if self._ooc is None:
            phrases = [*OOC_PHRASES, *self.settings.banned_phrases]
            self._ooc = OOCDetector(self.vectorizer, phrases)
        return self._ooc

    def timings(self) -> dict[str, float]:
        """Seconds inside generation and model loading, and the number of generations, so far."""
        backends = [backend for _, backend in self._engines.values()]
        return {"model_s": sum(b.seconds for b in backends),
                "model_load_s": sum(getattr(b, "load_seconds", 0.0) for b in backends),
                "generations": sum(b.calls for b in backends)}

    def close(self) -> None:
        for engine, _ in self._engines.values():
            engine.close()
        self._engines.clear()
