"""Sampling parameters for a reply: the character's catchphrase bias, banned phrases and stop sequences,
or the plain configured knobs for a bare base model."""

from __future__ import annotations

from collections.abc import Sequence

from rolecraft.backends.adapters import adapter_for
from rolecraft.backends.anticopy import card_text
from rolecraft.backends.base import SamplingParams
from rolecraft.characters.model import Character
from rolecraft.settings import Settings

DEFAULT_BANNED = (
    "As an AI",
    "as an AI language model",
    "I am an AI",
    "I'm an AI",
    "AI assistant",
    "language model",
    "OpenAI",
    "I cannot assist with",
)


def stop_sequences(user: str, char: str, others: Sequence[str] = ()) -> list[str]:
    """Stops that keep the model from writing the user's (or others') lines or another turn of its own."""
    speakers = [f"\n{name}:" for name in (user, *others)]
    return [*speakers, f"\n{user} :", f"\n{char}:", "<|im_end|>", "<|im_start|>", "<|endoftext|>"]


def sampling_for(
    settings: Settings, character: Character, user: str, *, cache_key: str | None = None,
    others: Sequence[str] = (), **overrides: object
) -> SamplingParams:
    """SamplingParams from the settings plus the character's role constraints."""
    params = SamplingParams(
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        repeat_penalty=settings.repeat_penalty,
        seed=settings.seed,
        stop=stop_sequences(user, character.name, others),
        boost_phrases=list(character.catchphrases),
        boost_strength=settings.catchphrase_bias,
        banned_phrases=[*DEFAULT_BANNED, *settings.banned_phrases],
        cache_key=cache_key,
        adapter=adapter_for(settings, character),
        copy_source=card_text(character, user) if settings.anti_copy else None,
        copy_max_tokens=settings.anti_copy_tokens,
        dry_multiplier=settings.dry_multiplier,
    )
    for key, value in overrides.items():
        setattr(params, key, value)
    return params


def plain_sampling(settings: Settings, **overrides: object) -> SamplingParams:
    """Sampling for a bare base model: the configured knobs, no character constraints."""
    params = SamplingParams(max_tokens=settings.max_tokens, temperature=settings.temperature, top_p=settings.top_p,
                            top_k=settings.top_k, repeat_penalty=settings.repeat_penalty, seed=settings.seed)
    for key, value in overrides.items():
        setattr(params, key, value)
    return params
