"""The context builder: turns a character, persona and history into the messages of one turn."""

from rolecraft.prompting.builder import ContextBuilder, Insertions, PromptPlan, TurnInput

__all__ = ["ContextBuilder", "Insertions", "PromptPlan", "TurnInput"]
