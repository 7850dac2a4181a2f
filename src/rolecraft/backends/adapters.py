"""Which LoRA adapter a character speaks through, and the adapters installed under <home>/adapters."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rolecraft.backends.models import adapter_name

if TYPE_CHECKING:
    from rolecraft.characters.model import Character
    from rolecraft.settings import Settings

ADAPTERS_OFF = "off"


def adapter_for(settings: Settings, character: Character) -> str | None:
    """The LoRA adapter `character` speaks through: its card's, else the configured default, else none;
    the setting "off" turns every adapter off. A relative path means a file or folder under <home>/adapters,
    else an adapter shipped with rolecraft by that name."""
    if settings.adapter == ADAPTERS_OFF:
        return None
    name = character.adapter or settings.adapter
    if not name:
        return None
    path = Path(name).expanduser()
    if path.is_absolute():
        return str(path)
    installed = settings.home / "adapters" / path
    return str(installed if installed.exists() else shipped_adapter(name) or installed)


def shipped_adapter(name: str) -> Path | None:
    """An adapter that ships inside rolecraft (backends/adapters_data/NAME.gguf), e.g. 'grounded'; one installed
    under <home>/adapters with the same name wins."""
    path = Path(__file__).with_name("adapters_data") / f"{name}.gguf"
    return path if "/" not in name and path.is_file() else None


def installed_adapters(settings: Settings) -> dict[str, Path]:
    """Adapters under <home>/adapters by name (file or folder name without extension): LoRA GGUF files,
    and PEFT folders (adapter_config.json). The server offers them as models, as vLLM offers its LoRAs."""
    folder = settings.home / "adapters"
    if not folder.is_dir():
        return {}
    found = [p for p in folder.glob("*.gguf") if p.is_file()]
    found += [p for p in folder.iterdir() if (p / "adapter_config.json").is_file()]
    return dict(sorted((adapter_name(str(p)), p) for p in found))
