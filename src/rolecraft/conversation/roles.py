"""Sampling parameters for a character: catchphrase bias, banned phrases, stop sequences."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rolecraft.backends.base import SamplingParams
from rolecraft.backends.models import adapter_name
from rolecraft.characters.model import Character
from rolecraft.settings import Settings

ADAPTERS_OFF = "off"
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
    )
    for key, value in overrides.items():
        setattr(params, key, value)
    return params


def adapter_for(settings: Settings, character: Character) -> str | None:
    """The LoRA adapter `character` speaks through: its card's, else the configured default, else none;
    the setting "off" turns every adapter off. A relative path means a file or folder under <home>/adapters."""
    if settings.adapter == ADAPTERS_OFF:
        return None
    name = character.adapter or settings.adapter
    if not name:
        return None
    path = Path(name).expanduser()
    return str(path if path.is_absolute() else settings.home / "adapters" / path)


def installed_adapters(settings: Settings) -> dict[str, Path]:
    """Adapters under <home>/adapters by name (file or folder name without extension): LoRA GGUF files,
    and PEFT folders (adapter_config.json). The server offers them as models, as vLLM offers its LoRAs."""
    folder = settings.home / "adapters"
    if not folder.is_dir():
        return {}
    found = [p for p in folder.glob("*.gguf") if p.is_file()]
    found += [p for p in folder.iterdir() if (p / "adapter_config.json").is_file()]
    return dict(sorted((adapter_name(str(p)), p) for p in found))
