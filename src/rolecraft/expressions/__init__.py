"""Expressions: one of SillyTavern's 28 labels for every reply, and the sprite that shows it.

`classify` is the offline lexicon + sentiment method (VADER for English, SnowNLP
for Chinese); `classify_llm` asks the llama.cpp chat model with a grammar that
only allows the labels; `sprite_for` finds the character's sprite for a label.
`labelled.jsonl` is the small hand-labelled set the methods are measured on
(benchmarks/expression_accuracy.py).
"""

from rolecraft.expressions.classify import LABELS, Expression, classify
from rolecraft.expressions.llm import classify_llm
from rolecraft.expressions.sprites import Sprite, sprite_for

__all__ = ["LABELS", "Expression", "Sprite", "classify", "classify_llm", "sprite_for"]
