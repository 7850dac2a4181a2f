"""Characters: the model, card import/export (JSON, PNG, CHARX), macros and the bundled samples.

Pure bytes ↔ `Character`: no database, no network, no CLI. Everything a user
can get wrong in a card file surfaces as `RolecraftError(code="invalid_card")`.
"""

from rolecraft.characters.cards import card_from_character, character_from_card
from rolecraft.characters.io import dump_character, load_character, load_character_file
from rolecraft.characters.macros import expand_macros
from rolecraft.characters.model import Asset, Character, Lorebook, LorebookEntry

__all__ = [
    "Asset",
    "Character",
    "Lorebook",
    "LorebookEntry",
    "card_from_character",
    "character_from_card",
    "dump_character",
    "expand_macros",
    "load_character",
    "load_character_file",
]
