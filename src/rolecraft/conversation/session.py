"""A chat session: the turn loop over one stored message tree.

A turn streams the reply and writes the user's message and the reply to the
store in one transaction only after the reply is complete, so an interrupted
or killed turn leaves the session exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rolecraft.characters.model import Character
from rolecraft.conversation.context import Lore
from rolecraft.conversation.media import Blob, Perceived, UserInput, expression_of, perceive
from rolecraft.conversation.planner import Dialogue, Line, Spoken, plan_turn
from rolecraft.conversation.reply import Reply
from rolecraft.conversation.sampling import sampling_for
from rolecraft.errors import RolecraftError, not_found
from rolecraft.memory.carry import Memory, after_turn
from rolecraft.memory.state import DialogueState
from rolecraft.messages import Message
from rolecraft.prompting import PromptPlan
from rolecraft.store.records import UNSET, NewMessage, StoredMessage, Unset

if TYPE_CHECKING:
    from rolecraft.conversation.engine import Engine

WINDOW = 64  # messages read per step when assembling a prompt


@dataclass
class TurnResult:
    """What a finished turn produced."""

    text: str
    messages: list[StoredMessage]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    total_s: float


@dataclass
class Turn:
    """An in-flight reply: iterate for text pieces; `result` is set once it completes and is stored.

    `overrides` (sampling fields) and `extra_stops` let callers such as the API adjust one turn.
    The turn is stored only if the session head is still where it was when the turn was planned.
    """

    session: ChatSession
    plan: PromptPlan
    parent_id: int | None
    new_user: str | None
    history: list[StoredMessage]
    memory: Memory
    user_meta: dict = field(default_factory=dict)
    speaker: Character | None = None
    head: int | None = None
    overrides: dict = field(default_factory=dict)
    extra_stops: list[str] = field(default_factory=list)
    blobs: tuple[Blob, ...] = ()
    reply: Reply | None = None
    result: TurnResult | None = None

    def __iter__(self) -> Iterator[str]:
        engine, character = self.session.engine, self.speaker or self.session.character
        params = sampling_for(engine.settings, character, self.session.user_name,
                              cache_key=self.session.cache_key(character),
                              others=self.session.other_names(character), **self.overrides)
        params.stop = [*params.stop, *self.extra_stops]
        self.reply = Reply(engine.backend, self.plan.messages, params, speaker=character.name)
        yield from self.reply
        text = self.reply.text.strip()
        if not text:
            raise RolecraftError("the model produced an empty reply; nothing was stored (try again, or raise "
                                 "temperature)", code="empty_reply", status=502, type="server_error")
        meta = self.session.remember(self, text) | self.reply.meta() | {"expression": expression_of(engine, text)}
        stored = self.session.commit(self.parent_id, self.new_user, text, meta, self.user_meta, self.speaker,
                                     expect_head=self.head, blobs=self.blobs)
        r = self.reply
        self.result = TurnResult(text, stored, r.finish_reason, r.prompt_tokens, r.completion_tokens, r.ttft_s,
                                 r.total_s)

    def text(self) -> str:
        """Run the turn to the end and return the reply."""
        for _ in self:
            pass
        assert self.result is not None
        return self.result.text


class ChatSession:
    """One conversation with one character."""

    group = False  # group scenes name every speaker in the prompt

    def __init__(self, engine: Engine, session_id: str) -> None:
        self.engine = engine
        self.info = engine.store.get_session(session_id)
        self.id = session_id
        self.character = engine.character(self.info.character_id)
        self.user_name = self.info.user_name
        self.lore = Lore(self.character, [a.book for a in engine.store.session_lorebooks(session_id)])

    def refresh(self) -> None:
        self.info = self.engine.store.get_session(self.id)

    def history(self, leaf_id: int | None = None) -> list[StoredMessage]:
        """Messages from the root to `leaf_id` (default: the current head)."""
        return self.engine.store.path(self.id, leaf_id)

    def plan(self, history: list[StoredMessage], new: Perceived | None = None, speaker: Character | None = None,
             reply_tokens: int | None = None) -> tuple[PromptPlan, Memory]:
        """The prompt for `speaker`'s reply after `history` (+ the user's new message, if any), keeping
        `reply_tokens` (default: the configured max_tokens) free for the reply."""
        speaker = speaker or self.character
        lines: list[Spoken] = list(history)
        if new is not None:
            lines.append(Line("user", self.user_name, new.text, new.meta, new.native_images))
        memory = Memory.latest(history)
        dialogue = Dialogue(speaker, self.user_name, lines, new_user=new is not None, persona=self.info.persona,
                            memory=memory, lore=self._lore(speaker), first_index=history[0].depth if history else 0,
                            group=self.group, late=self._late(lines, speaker))
        recall = (lambda dropped: self._recall(new.text, dropped, history)) if new is not None else None
        settings = self.engine.settings
        plan = plan_turn(settings, self.engine.builder, dialogue, recall=recall,
                         reply_tokens=settings.max_tokens if reply_tokens is None else reply_tokens)
        return plan, memory

    def _recall(self, query: str | None, dropped: int, history: list[StoredMessage]) -> list[str]:
        """Old exchanges relevant to `query` that fell out of the context (current branch only)."""
        vectors = self.engine.vectors
        if vectors is None or not query or dropped == 0 or not history:
            return []
        return vectors.recall(self.id, query, before_depth=dropped, history=history,
                              k=self.engine.settings.memory_results)

    def _lore(self, speaker: Character) -> Lore:
        return self.lore

    def _late(self, lines: Sequence[Spoken], speaker: Character) -> list[str]:
        """Notes for the prompt's late block besides state and lore (a scene adds its game state)."""
        return []

    def cache_key(self, speaker: Character) -> str:
        """Which KV cache a reply by `speaker` continues (one per speaker in group scenes)."""
        return self.id

    def other_names(self, speaker: Character) -> list[str]:
        """Names of others in the scene whose lines the speaker must not write."""
        return []

    def _turn(self, history: list[StoredMessage], new: Perceived | None, parent_id: int | None,
              speaker: Character | None = None, overrides: dict | None = None) -> Turn:
        overrides = dict(overrides or {})
        plan, memory = self.plan(history, new, speaker, overrides.get("max_tokens"))
        return Turn(self, plan, parent_id, new.text if new else None, history, memory, new.meta if new else {},
                    speaker, head=self.info.head_id, overrides=overrides, blobs=new.blobs if new else ())

    def remember(self, turn: Turn, reply: str) -> dict:
        """Meta for the new reply: the updated dialogue state and rolling summary of this branch."""
        engine = self.engine
        return after_turn(engine.settings, engine.backend, self.character, self.user_name, turn, reply).to_meta()

    def recent(self, leaf_id: int | None = None) -> list[StoredMessage]:
        """Enough recent history to fill the context: a window of WINDOW·4^k messages, the first that
        reaches the root or holds more than the context can take, so long sessions never load everything.
        The engine remembers each session's window, so a turn reads it in one query."""
        windows = self.engine.windows
        window = windows.get(self.id, WINDOW)
        while True:
            history = self.engine.store.path(self.id, leaf_id, last=window)
            size = self._enough(history, window)
            if size is not None:
                if len(windows) >= 10_000:
                    windows.clear()
                windows[self.id] = size
                return history[-size:]
            window *= 4

    def _enough(self, history: list[StoredMessage], window: int) -> int | None:
        """The smallest window (WINDOW, 4·WINDOW, ... up to `window`) whose tail of `history` reaches the root
        or overflows the context; None when even `window` does neither."""
        size, tokens, counted, limit = WINDOW, 0, 0, self.engine.backend.context_size
        while size <= window:
            if len(history) <= size and (not history or history[0].depth == 0):
                return size
            for m in history[max(0, len(history) - size): len(history) - counted]:
                tokens += self.engine.builder.cost(Message(m.role, m.content))  # type: ignore[arg-type]
            counted = min(size, len(history))
            if tokens > limit:
                return size
            size *= 4
        return None

    def perceive(self, user_text: str = "", *, images: Sequence[bytes] = (), audio: bytes | None = None,
                 heard: object = None) -> Perceived:
        """The user's words, pictures and speech as the character takes them in (the one perception path;
        `heard`: a recogniser that already transcribed `audio`)."""
        if not images and audio is None:
            if not user_text.strip():
                raise RolecraftError("empty message", code="empty_message", param="content")
            return Perceived(user_text.strip())
        return perceive(self.engine, self.character, self.user_name, UserInput(user_text, images, audio, heard))

    def send(self, user_text: str = "", *, images: Sequence[bytes] = (), audio: bytes | None = None,
             overrides: dict | None = None, heard: object = None) -> Turn:
        """Start a turn answering the user's words, pictures and/or speech after the current head.
        `overrides` are this turn's sampling fields (max_tokens also sets the room kept for the reply)."""
        new = self.perceive(user_text, images=images, audio=audio, heard=heard)
        self.refresh()
        return self._turn(self.recent(), new, self.info.head_id, overrides=overrides)

    def regenerate(self, overrides: dict | None = None) -> Turn:
        """A new reply (a swipe) to the user message before the current reply."""
        self.refresh()
        history = self.recent()
        if not history or history[-1].role != "assistant" or len(history) < 2:
            raise RolecraftError("nothing to regenerate: the last message is not a reply to you",
                                 code="nothing_to_regenerate")
        return self._turn(history[:-1], None, history[-1].parent_id, overrides=overrides)

    def edit_last_user(self, text: str, overrides: dict | None = None) -> Turn:
        """Replace your last message (as a new branch) and get a new reply to it."""
        self.refresh()
        history = self.recent()
        users = [i for i, m in enumerate(history) if m.role == "user"]
        if not users:
            raise RolecraftError("you have not said anything yet in this session", code="nothing_to_edit")
        cut = users[-1]
        return self._turn(history[:cut], self.perceive(text), history[cut].parent_id, overrides=overrides)

    def edit_last_reply(self, text: str) -> StoredMessage:
        """Replace the character's last reply with your own text (kept as a swipe)."""
        history = self.recent()
        if not history or history[-1].role != "assistant":
            raise RolecraftError("the last message is not the character's", code="nothing_to_edit")
        edited = NewMessage("assistant", self.character.name, text.strip(), {"edited": True})
        return self.engine.store.append(self.id, history[-1].parent_id, [edited])[0]

    def branch(self, message_id: int) -> None:
        """Continue the conversation from an earlier message of this session (the old branch is kept)."""
        self.engine.store.set_head(self.id, message_id)
        self.refresh()

    def tree(self) -> list[StoredMessage]:
        """Every message of every branch and swipe."""
        return self.engine.store.all_messages(self.id)

    def delete_message(self, message_id: int) -> None:
        """Delete a message of this session and everything after it on every branch (the head moves up)."""
        if self.engine.store.get_message(message_id).session_id != self.id:
            raise not_found("message", str(message_id))
        self.engine.store.delete_message(message_id)
        self.refresh()

    def select_swipe(self, index: int) -> list[StoredMessage]:
        """Show alternative `index` of the last message; the alternatives."""
        found = self.swipes()
        if not 0 <= index < len(found):
            raise RolecraftError(f"the last message has {len(found)} swipes; no #{index}", code="invalid_swipe",
                                 param="index")
        self.branch(found[index].id)
        return found

    def attach_lorebook(self, path: str) -> int:
        """Attach a standalone lorebook file (SillyTavern world info or lorebook_v3) to this session."""
        from rolecraft.lorebook import load_lorebook_file

        book = load_lorebook_file(path)
        attached = self.engine.store.attach_lorebook(self.id, book.name or Path(path).stem, book)
        self.lore = Lore(self.character, [a.book for a in self.engine.store.session_lorebooks(self.id)])
        return len(attached.book.entries)

    def state(self) -> DialogueState:
        """What the character tracks at the current point of this branch."""
        return Memory.latest(self.recent()).state

    def set_state(self, document: str) -> DialogueState:
        """Replace the tracked state at the current message with the user's JSON (validated first)."""
        try:
            state = DialogueState.model_validate_json(document)
        except ValueError as exc:
            raise RolecraftError(f"invalid state: {exc}", code="invalid_state", param="state") from None
        history = self.recent()
        if not history:
            raise RolecraftError("this session has no messages to attach a state to", code="invalid_state")
        memory = Memory.latest(history)
        memory.state = state
        self.engine.store.update_meta(history[-1].id, memory.to_meta())
        return state

    def keep(self, blobs: Sequence[Blob]) -> None:
        """Store the attachments a message about to be appended links (idempotent)."""
        for blob in blobs:
            self.engine.store.put_attachment(blob.data, blob.media_type, blob.kind, owner=self.info.owner)

    def scene_meta(self) -> dict:
        """Meta every new message carries (group scenes record who was present)."""
        return {}

    def swipes(self) -> list[StoredMessage]:
        """Alternatives to the current last message."""
        self.refresh()
        return [] if self.info.head_id is None else self.engine.store.siblings(self.info.head_id)

    def commit(self, parent_id: int | None, user_text: str | None, reply: str, meta: dict,
               user_meta: dict | None = None, speaker: Character | None = None, *,
               expect_head: int | Unset | None = UNSET, blobs: Sequence[Blob] = ()) -> list[StoredMessage]:
        """Store the user's message (with its attachments) and the reply in one step."""
        self.keep(blobs)
        scene = self.scene_meta()
        new = [] if user_text is None else [NewMessage("user", self.user_name, user_text, (user_meta or {}) | scene)]
        new.append(NewMessage("assistant", (speaker or self.character).name, reply, meta | scene))
        stored = self.engine.store.append(self.id, parent_id, new, expect_head=expect_head)
        if self.engine.vectors is not None and user_text:
            last = stored[-1]
            self.engine.vectors.remember(self.id, last.id, last.depth, f"{self.user_name}: {user_text}\n"
                                         f"{last.name}: {reply}")
        self.refresh()
        return stored
