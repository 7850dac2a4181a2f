"""Text sections of the prompt, each rendered from the character card with macros expanded.

The character definition is written once per session and never changes, so it
forms the stable prefix that the llama.cpp KV cache can reuse every turn.
"""

from __future__ import annotations

import re

from rolecraft.characters.macros import expand_macros
from rolecraft.characters.model import Character

DEFAULT_SYSTEM = (
    "You are {{char}}. Stay in character at all times and write only {{char}}'s next reply to {{user}}: "
    "speech and short actions, in {{char}}'s own voice. Never mention being an AI or a language model."
)


def _field(label: str, text: str) -> str:
    return f"{label}: {text.strip()}" if text and text.strip() else ""


def definition(character: Character, user: str, persona: str = "", default_system: str = "") -> str:
    """The system prompt: instructions plus everything the card says about the character.
    `default_system` replaces the built-in instructions (the card's own system prompt still wins)."""
    default = default_system or DEFAULT_SYSTEM
    system = character.system_prompt.replace("{{original}}", default) or default
    relations = "; ".join(f"{who}: {what}" for who, what in character.relationships.items())
    catchphrases = " | ".join(f'"{c}"' for c in character.catchphrases)
    parts = [
        system,
        _field("Description", character.description),
        _field("Appearance", character.appearance),
        _field("Personality", character.personality),
        _field("Life story", character.background),
        _field("Relationships", relations),
        _field("Speech style", character.speech_style),
        _field("Catchphrases", catchphrases),
        _field("Scenario", character.scenario),
        _field(f"About {user}", persona),
    ]
    return expand_macros("\n".join(p for p in parts if p), character.name, user)


def example_blocks(character: Character, user: str) -> list[str]:
    """The card's example dialogue, one string per <START> block."""
    blocks = re.split(r"<start>", character.mes_example, flags=re.IGNORECASE)
    return [expand_macros(b.strip(), character.name, user) for b in blocks if b.strip()]


def examples_message(blocks: list[str], character: Character) -> str:
    """Example dialogue presented as reference text, not as real turns."""
    body = "\n\n".join(blocks)
    return f"Examples of how {character.name} talks:\n{body}"


def post_history(character: Character, user: str) -> str:
    """Post-history instructions, placed after the conversation."""
    text = character.post_history_instructions.replace("{{original}}", "")
    return expand_macros(text.strip(), character.name, user)
