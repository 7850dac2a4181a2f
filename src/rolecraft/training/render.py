"""Training samples → token ids + loss mask, through the chat path's own prompt builder.

A sample is rendered as the prompt chat would build for the character's last
reply (card definition, examples when they fit, lorebook entries the dialogue
triggers, the author's note, the dialogue, post-history instructions: the same
`gather` and `ContextBuilder` a stored session uses), followed by that reply.
Tracked state and summaries are not part of training data; a sample's `remembered` lines enter as
long-term memory's recall block, and pictures with their observations get chat's reminder. The ids come
from the inference backend's `ChatTemplate`, so the prompt part of a training
sequence is exactly the token list `rolecraft chat` feeds the model; the mask
is 1 on every one of the character's turns (the dialogue's, not lorebook text
placed in the assistant role) and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rolecraft.characters.model import Character
from rolecraft.conversation.planner import Line, client_dialogue, plan_turn
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message
from rolecraft.prompting import ContextBuilder, PromptPlan
from rolecraft.settings import Settings
from rolecraft.training.samples import PreferencePair, TrainingSample, Turn

Lookup = Callable[[str], Character | None]


@dataclass(frozen=True)
class Encoded:
    """One training sequence: ids, loss mask, and where the last reply's prompt ends."""

    id: str
    ids: list[int]
    mask: list[int]
    prompt_len: int


def user_content(turn: Turn) -> str:
    """A user turn as chat shows it to a text-only model: picture notes first, then the words."""
    return "\n".join([turn.observation, turn.content]) if turn.observation else turn.content


def turn_line(turn: Turn) -> Line:
    """A training turn as a planner line. A turn with `perceived` pictures carries the meta the perception
    path writes (notes + observations), so the planner shows it and adds the reminder exactly as in chat."""
    if turn.role == "user" and turn.perceived and turn.observation:
        meta = {"image_notes": turn.observation.split("\n"), "images": turn.perceived}
        return Line("user", "", turn.content, meta)
    return Line(turn.role, "", user_content(turn) if turn.role == "user" else turn.content)


def sample_plan(settings: Settings, builder: ContextBuilder, character: Character, turns: list[Turn], *, user: str,
                remembered: Sequence[str] = (), late: Sequence[str] = ()) -> PromptPlan:
    """The chat prompt for the character's reply after `turns` (ending with the user's), built by the one
    turn planner; `remembered` lines enter as long-term memory's recall block does in a stored session,
    `late` notes join the late block (a teacher's extra guidance)."""
    dialogue = client_dialogue(character, [turn_line(t) for t in turns], user=user, persona=settings.persona)
    dialogue.late.extend(late)
    recall = (lambda _dropped: list(remembered)) if remembered else None
    return plan_turn(settings, builder, dialogue, reply_tokens=settings.max_tokens, recall=recall)


class Renderer:
    """Renders samples with one inference backend (it must expose `template`, a ChatTemplate).

    Settings give the room chat keeps for the reply (max_tokens), so history is cut at
    the same place as in chat, and the lorebook and author's-note options."""

    def __init__(self, backend: Any, characters: Lookup, settings: Settings, *, max_tokens: int | None = None) -> None:
        if getattr(backend, "template", None) is None:
            raise RolecraftError(f"the {backend.name} backend cannot render training data (no chat template)",
                                 code="unsupported_backend", param="backend")
        self.backend, self.characters = backend, characters
        self.max_tokens = max_tokens or backend.context_size
        self.settings = settings
        self.builder = ContextBuilder(backend, reply_tokens=settings.max_tokens, system_prompt=settings.system_prompt)

    def character(self, sample: TrainingSample | PreferencePair) -> Character:
        found = self.characters(sample.character)
        return found or Character(name=sample.character, description=sample.profile)

    def prompt(self, sample: TrainingSample | PreferencePair, turns: list[Turn]) -> list[Message]:
        """The chat prompt for the character's reply after `turns` (which end with the user's)."""
        try:
            return sample_plan(self.settings, self.builder, self.character(sample), turns, user=sample.user,
                               remembered=sample.remembered).messages
        except RolecraftError as exc:
            if exc.code != "context_overflow":
                raise
            raise RolecraftError(f"sample {sample.id!r}: {exc.message.split(';')[0]}; raise --max-length, or "
                                 "shorten the card or the sample", code="sample_too_long", param="data") from exc

    def encode(self, sample: TrainingSample) -> Encoded:
        """Ids and mask of a dialogue: the chat prompt for its last reply, then that reply."""
        last = max(i for i, t in enumerate(sample.messages) if t.role == "assistant" and t.content.strip())
        prompt = self.prompt(sample, sample.messages[:last])
        messages = [*prompt, Message("assistant", sample.messages[last].content, kind="history")]
        learn = [m.kind == "history" and (sample.learn == "all" or i == len(messages) - 1)
                 for i, m in enumerate(messages)]
        ids, mask = self.backend.template.training_ids(messages, learn)
        prompt_len = len(self.backend.template.ids(prompt))
        self._check_length(sample.id, len(ids))
        return Encoded(sample.id, ids, mask, prompt_len)

    def encode_pair(self, pair: PreferencePair) -> tuple[Encoded, Encoded]:
        """The chosen and the rejected sequence; both share the chat prompt and are masked to the reply only."""
        prompt = self.prompt(pair, pair.messages)
        prompt_ids = self.backend.template.ids(prompt)
        out = []
        for reply in (pair.chosen, pair.rejected):
            ids = self.backend.template.ids([*prompt, Message("assistant", reply)], generation_prompt=False)
            if ids[: len(prompt_ids)] != prompt_ids:
                raise RolecraftError("the chat template changed the prompt when a reply was appended",
                                     code="unsupported_template", param="model")
            self._check_length(pair.id, len(ids))
            out.append(Encoded(pair.id, ids, [0] * len(prompt_ids) + [1] * (len(ids) - len(prompt_ids)),
                               len(prompt_ids)))
        return out[0], out[1]

    def _check_length(self, sample_id: str, length: int) -> None:
        if length > self.max_tokens:
            raise RolecraftError(f"sample {sample_id!r} is {length} tokens, longer than the {self.max_tokens}-token "
                                 "training context; shorten it, raise --max-length, or run `rolecraft data prepare "
                                 "--max-tokens` to drop long samples", code="sample_too_long", param="data")
