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
from rolecraft.conversation.context import Lore, gather
from rolecraft.conversation.media import Perceived, UserInput, expression_of, perceive, prompt_content
from rolecraft.conversation.reply import Reply
from rolecraft.conversation.sampling import sampling_for
from rolecraft.errors import RolecraftError
from rolecraft.memory.carry import Memory, after_turn
from rolecraft.memory.state import DialogueState
from rolecraft.messages import Message
from rolecraft.prompting import PromptPlan, TurnInput
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
                                     expect_head=self.head)
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

    def plan(self, history: list[StoredMessage], user_text: str | None, new: Perceived | None = None,
             speaker: Character | None = None) -> tuple[PromptPlan, Memory]:
        """The prompt for `speaker`'s reply after `history` (+ the user's new message, if any)."""
        speaker = speaker or self.character
        turns = self._turn_inputs(history, new, speaker)
        if user_text is not None:
            content = prompt_content(user_text, new.meta if new else {}, True, self.user_name)
            turns.append(TurnInput("user", self._said(self.user_name, content), new.native_images if new else ()))
        memory = Memory.latest(history)
        engine = self.engine
        extras = gather(engine.settings, speaker, self.user_name, history, user_text, memory, self._lore(speaker),
                        lambda text: engine.builder.cost(Message("system", text)))
        first = history[0].depth if history else 0
        plan = engine.builder.build(speaker, self.user_name, turns, persona=self.info.persona,
                                    first_index=first, extras=extras)
        recalled = self._recall(user_text, plan.dropped_messages, history)
        if recalled:
            extras.late.append(f"[{speaker.name} remembers]\n" + "\n".join(recalled))
            plan = engine.builder.build(speaker, self.user_name, turns, persona=self.info.persona,
                                        first_index=first, extras=extras)
        return plan, memory

    def _recall(self, query: str | None, dropped: int, history: list[StoredMessage]) -> list[str]:
        """Old exchanges relevant to `query` that fell out of the context (current branch only)."""
        vectors = self.engine.vectors
        if vectors is None or not query or dropped == 0 or not history:
            return []
        branch: set[int] = set()

        def on_branch(message_id: int) -> bool:
            if not branch:
                branch.update(self.engine.store.path_ids(self.id, history[-1].id))
            return message_id in branch

        return vectors.recall(self.id, query, before_depth=dropped, on_branch=on_branch,
                              k=self.engine.settings.memory_results)

    def _turn_inputs(self, history: list[StoredMessage], new: Perceived | None,
                     speaker: Character) -> list[TurnInput]:
        """History as `speaker` reads it; only the latest `max_context_images` pictures are described."""
        shown = self.engine.settings.max_context_images - len((new.meta if new else {}).get("image_notes", []))
        turns = []
        for m in reversed(history):
            notes = len(m.meta.get("image_notes", []))
            if m.role == "user":
                content = prompt_content(m.content, m.meta, shown >= notes > 0, self.user_name)
                turns.append(TurnInput("user", self._said(m.name, content)))
            elif m.name == speaker.name:
                turns.append(TurnInput("assistant", m.content))
            else:
                turns.append(TurnInput("user", f"{m.name}: {m.content}"))
            shown -= notes
        return turns[::-1]

    def _said(self, name: str, content: str) -> str:
        """A user line as the model reads it (group scenes name every speaker)."""
        return content

    def _lore(self, speaker: Character) -> Lore:
        return self.lore

    def cache_key(self, speaker: Character) -> str:
        """Which KV cache a reply by `speaker` continues (one per speaker in group scenes)."""
        return self.id

    def other_names(self, speaker: Character) -> list[str]:
        """Names of others in the scene whose lines the speaker must not write."""
        return []

    def _turn(self, history: list[StoredMessage], user_text: str | None, parent_id: int | None,
              new: Perceived | None = None, speaker: Character | None = None) -> Turn:
        plan, memory = self.plan(history, user_text, new, speaker)
        return Turn(self, plan, parent_id, user_text, history, memory, new.meta if new else {}, speaker,
                    head=self.info.head_id)

    def remember(self, turn: Turn, reply: str) -> dict:
        """Meta for the new reply: the updated dialogue state and rolling summary of this branch."""
        engine = self.engine
        return after_turn(engine.settings, engine.backend, self.character, self.user_name, turn, reply).to_meta()

    def recent(self, leaf_id: int | None = None) -> list[StoredMessage]:
        """Enough recent history to fill the context: a window that grows until it reaches the root
        or holds more than the context can take, so long sessions never load everything."""
        window = WINDOW
        while True:
            history = self.engine.store.path(self.id, leaf_id, last=window)
            if not history or history[0].depth == 0:
                return history
            tokens = sum(self.engine.builder.cost(Message(m.role, m.content)) for m in history)  # type: ignore[arg-type]
            if tokens > self.engine.backend.context_size:
                return history
            window *= 4

    def send(self, user_text: str = "", *, images: Sequence[bytes] = (), audio: bytes | None = None) -> Turn:
        """Start a turn answering the user's words, pictures and/or speech after the current head."""
        if not images and audio is None:
            if not user_text.strip():
                raise RolecraftError("empty message", code="empty_message", param="content")
            new = Perceived(user_text.strip())
        else:
            new = perceive(self.engine, self.character, self.user_name, UserInput(user_text, images, audio))
        self.refresh()
        return self._turn(self.recent(), new.text, self.info.head_id, new)

    def regenerate(self) -> Turn:
        """A new reply (a swipe) to the user message before the current reply."""
        self.refresh()
        history = self.recent()
        if not history or history[-1].role != "assistant" or len(history) < 2:
            raise RolecraftError("nothing to regenerate: the last message is not a reply to you",
                                 code="nothing_to_regenerate")
        return self._turn(history[:-1], None, history[-1].parent_id)

    def edit_last_user(self, text: str) -> Turn:
        """Replace your last message (as a new branch) and get a new reply to it."""
        self.refresh()
        history = self.recent()
        users = [i for i, m in enumerate(history) if m.role == "user"]
        if not users:
            raise RolecraftError("you have not said anything yet in this session", code="nothing_to_edit")
        cut = users[-1]
        return self._turn(history[:cut], text.strip(), history[cut].parent_id)

    def edit_last_reply(self, text: str) -> StoredMessage:
        """Replace the character's last reply with your own text (kept as a swipe)."""
        history = self.recent()
        if not history or history[-1].role != "assistant":
            raise RolecraftError("the last message is not the character's", code="nothing_to_edit")
        edited = NewMessage("assistant", self.character.name, text.strip(), {"edited": True})
        return self.engine.store.append(self.id, history[-1].parent_id, [edited])[0]

    def branch(self, message_id: int) -> None:
        """Continue the conversation from an earlier message (the old branch is kept)."""
        self.engine.store.set_head(self.id, message_id)
        self.refresh()

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

    def scene_meta(self) -> dict:
        """Meta every new message carries (group scenes record who was present)."""
        return {}

    def swipes(self) -> list[StoredMessage]:
        """Alternatives to the current last message."""
        self.refresh()
        return [] if self.info.head_id is None else self.engine.store.siblings(self.info.head_id)

    def commit(self, parent_id: int | None, user_text: str | None, reply: str, meta: dict,
               user_meta: dict | None = None, speaker: Character | None = None, *,
               expect_head: int | Unset | None = UNSET) -> list[StoredMessage]:
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
