"""Which model ids exist: every stored character, the base model this process runs, and its adapters.

A chat request's `model` is resolved here: a character id means role-play with
that character (through the adapter its card names, if any), the base model id
means the messages go to the model unchanged, and an adapter's name (a LoRA
under <home>/adapters, listed like vLLM lists its --lora-modules) means the same
through that adapter.

The list puts the base model first, then adapters, then characters: clients such
as SillyTavern pick the first entry by default, and a client that builds its own
character prompt wants the plain model, not one of ours stacked on top of it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from rolecraft.backends.adapters import installed_adapters
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.server.models.protocol import Model, ModelInfo, ModelList
from rolecraft.store.records import UNSET, Unset


@dataclass(frozen=True)
class Target:
    """What a `model` id names: a character (character_id set), or the base model, bare or through `adapter`."""

    id: str
    character_id: str | None
    adapter: str | None = None


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def base_model_id(engine: Engine) -> str:
    """The base model's id: a GGUF file (a path, hf:OWNER/REPO/FILE.gguf) goes by its file stem."""
    model = engine.settings.model
    if model.lower().endswith(".gguf"):
        return PurePosixPath(model.replace("\\", "/")).stem
    return model


Owner = str | Unset | None


def resolve(engine: Engine, model: str, owner: Owner = UNSET) -> Target:
    """The target of a `model` id (a character `owner` can see, by id or unique name), or OpenAI's 404."""
    if engine.store.has_character(model, owner):
        return Target(model, engine.store.resolve_character(model, owner))
    if model in (base_model_id(engine), engine.settings.model):
        return Target(base_model_id(engine), None)
    adapter = installed_adapters(engine.settings).get(model)
    if adapter is not None:
        return Target(model, None, str(adapter))
    raise RolecraftError(f"the model '{model}' does not exist: use a character id, an adapter or the base model "
                         f"'{base_model_id(engine)}' (GET /v1/models lists them)",
                         code="model_not_found", status=404, param="model")


def list_models(engine: Engine, owner: Owner = UNSET) -> ModelList:
    """The base model, then its adapters, then the characters (see the module docstring for why)."""
    base = base_model_id(engine)
    models = [Model(id=base, created=0, owned_by="rolecraft", rolecraft=ModelInfo(kind="base_model", name=base))]
    models += [Model(id=name, created=int(path.stat().st_mtime), owned_by="rolecraft",
                     rolecraft=ModelInfo(kind="adapter", name=base))
               for name, path in installed_adapters(engine.settings).items() if not engine.store.has_character(name)]
    models += [Model(id=c.id, created=_epoch(c.created_at), owned_by="rolecraft",
                     rolecraft=ModelInfo(kind="character", name=c.name)) for c in engine.store.list_characters(owner)]
    return ModelList(data=models)


def get_model(engine: Engine, model: str, owner: Owner = UNSET) -> Model:
    target = resolve(engine, model, owner)
    return next(m for m in list_models(engine, owner).data if m.id in (target.id, target.character_id))
