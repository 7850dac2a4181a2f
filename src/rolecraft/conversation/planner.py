"""The one turn planner: every door builds a character's prompt here.

A stored session (CLI, REST, the OpenAI API with a session), a client-held
conversation (the OpenAI API with a character id), training data and the
evaluation harness all describe the conversation as `Line`s (role, speaker,
words, and the meta perception gave a message) and call `plan_turn`. The
planner turns lines into what the model reads — picture observations and
speech notes before the words, only the latest `max_context_images` pictures
in full — gathers the lorebook hits, tracked state, summary and author's note,
and asks the context builder to fit it all in the context minus the reply
length the caller actually asked for. Recalled memories, which only a stored
session has, come in through `recall`. The same lines therefore give the same
prompt, token for token, whichever door they came through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rolecraft.characters.macros import expand_macros
from rolecraft.characters.model import Character
from rolecraft.conversation.context import Lore, gather
from rolecraft.conversation.media import prompt_content, reminder
from rolecraft.errors import RolecraftError
from rolecraft.memory.carry import Memory
from rolecraft.messages import Message
from rolecraft.prompting import ContextBuilder, PromptPlan, TurnInput
from rolecraft.settings import Settings


class Spoken(Protocol):
    """A line of a conversation as the planner reads it (StoredMessage and Line fit)."""

    role: str
    name: str
    content: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class Line:
    """A message that is not (yet) in the store: a client-held history line, or the user's new message."""

    role: str
    name: str
    content: str
    meta: dict[str, Any] = field(default_factory=dict)
    images: tuple[str, ...] = ()  # native pictures (data: URLs) for backends that read images


Recall = Callable[[int], list[str]]  # messages dropped from the context → remembered lines


@dataclass
class Dialogue:
    """One conversation to plan a reply for, whoever holds it.

    `lines` is the history the speaker witnessed, ending with the user's new message when
    there is one (`new_user`); `group` names every speaker in the lines (group scenes)."""

    character: Character
    user: str
    lines: Sequence[Spoken]
    new_user: bool = True
    persona: str = ""
    memory: Memory = field(default_factory=Memory)
    lore: Lore | None = None
    instructions: list[Message] = field(default_factory=list)
    first_index: int = 0
    group: bool = False
    late: list[str] = field(default_factory=list)  # notes for the late block (a scene's game state)


def history_turns(settings: Settings, dialogue: Dialogue) -> list[TurnInput]:
    """The lines as the speaker reads them; only the latest `max_context_images` pictures are described."""
    shown, turns = settings.max_context_images, []
    speaker, user = dialogue.character.name, dialogue.user
    for line in reversed(dialogue.lines):
        notes = len(line.meta.get("image_notes", []))
        images = getattr(line, "images", ()) if shown >= notes > 0 else ()
        if line.role == "system":
            turns.append(TurnInput("system", line.content))
        elif line.role == "event":  # something that happened in a scene, told as a short narration
            said = prompt_content(line.content, line.meta, shown >= notes > 0, user)
            turns.append(TurnInput("system", f"[Event] {said}"))
        elif line.role == "user":
            content = prompt_content(line.content, line.meta, shown >= notes > 0, user)
            turns.append(TurnInput("user", f"{line.name}: {content}" if dialogue.group else content, images))
        elif line.name == speaker or not dialogue.group:
            turns.append(TurnInput("assistant", line.content))
        else:
            turns.append(TurnInput("user", f"{line.name}: {line.content}"))
        shown -= notes
    return turns[::-1]


def plan_turn(settings: Settings, builder: ContextBuilder, dialogue: Dialogue, *, reply_tokens: int,
              recall: Recall | None = None) -> PromptPlan:
    """The prompt for the character's next reply, within the context minus `reply_tokens`."""
    lines = list(dialogue.lines)
    said, new_text = (lines[:-1], lines[-1].content) if dialogue.new_user and lines else (lines, None)
    extras = gather(settings, dialogue.character, dialogue.user, said, new_text, dialogue.memory,
                    dialogue.lore or Lore(dialogue.character), lambda text: builder.cost(Message("system", text)))
    extras.late.extend(dialogue.late)
    turns = history_turns(settings, dialogue)
    looking = reminder(settings.image_reminder, lines[-1].meta, char=dialogue.character.name, user=dialogue.user) \
        if new_text is not None else None
    if looking:
        extras.late.append(looking)

    def build() -> PromptPlan:
        return builder.build(dialogue.character, dialogue.user, turns, persona=dialogue.persona,
                             first_index=dialogue.first_index, extras=extras, instructions=dialogue.instructions,
                             reply_tokens=reply_tokens)

    plan = build()
    remembered = recall(plan.dropped_messages) if recall is not None and new_text else []
    if remembered:
        extras.late.append(recall_note(settings.recall_template, remembered, char=dialogue.character.name,
                                       user=dialogue.user))
        plan = build()
    return plan


def recall_note(template: str, remembered: Sequence[str], *, char: str, user: str) -> str:
    """The `recall_template` text for recalled exchanges ("User: words" then "Char: words" each)."""
    said = [text.split("\n", 1)[0].removeprefix(f"{user}: ") for text in remembered]
    note = expand_macros(template, char, user)  # before the words go in, so theirs stay as said
    return note.replace("{{said}}", " / ".join(said)).replace("{{memories}}", "\n".join(remembered))


def as_lines(messages: Sequence[Message]) -> list[Line]:
    """Plain messages (text only) as planner lines."""
    return [Line(m.role, "", m.content) for m in messages]


def client_plan(settings: Settings, builder: ContextBuilder, character: Character, lines: Sequence[Line], *,
                user: str, persona: str = "", reply_tokens: int) -> PromptPlan:
    """The prompt for `character`'s reply to a client-held conversation that ends with the user's message."""
    return plan_turn(settings, builder, client_dialogue(character, lines, user=user, persona=persona),
                     reply_tokens=reply_tokens)


def client_dialogue(character: Character, messages: Sequence[Line], *, user: str, persona: str = "") -> Dialogue:
    """A client-held conversation (OpenAI messages, training data) as a Dialogue: its leading system
    messages are the client's instructions, kept right after the card definition (a stable prefix)."""
    cut = 0
    while cut < len(messages) and messages[cut].role == "system":
        cut += 1
    history = list(messages[cut:])
    if not history or history[-1].role != "user":
        raise RolecraftError("the last message must be the user's (role 'user') for a character to answer",
                             code="invalid_messages", param="messages")
    instructions = [Message("system", "\n\n".join(m.content for m in messages[:cut]), kind="client_system")]
    named = [Line(m.role, user if m.role == "user" else character.name, m.content, m.meta, m.images)
             for m in history]
    return Dialogue(character, user, named, persona=persona, instructions=instructions if cut else [])
