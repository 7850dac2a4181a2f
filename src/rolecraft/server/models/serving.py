"""Which model ids exist: every stored character, the base model this process runs, and its adapters.

A chat request's `model` is resolved here: a character id means role-play with
that character (through the adapter its card names, if any), the base model id
means the messages go to the model unchanged, and an adapter's name (a LoRA
under <home>/adapters, listed like vLLM lists its --lora-modules) means the same
through that adapter.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from rolecraft.backends.adapters import installed_adapters
from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.server.models.protocol import Model, ModelInfo, ModelList


@dataclass(frozen=True)
class Target:
    """What a `model` id names: a character (character_id set), or the base model, bare or through `adapter`."""

    id: str
    character_id: str | None
    adapter: str | None = None


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def base_model_id(engine: Engine) -> str:
    return engine.settings.model


def resolve(engine: Engine, model: str) -> Target:
    """The target of a `model` id, or OpenAI's 404 model_not_found."""
    if engine.store.has_character(model):
        return Target(model, model)
    if model == base_model_id(engine):
        return Target(model, None)
    adapter = installed_adapters(engine.settings).get(model)
    if adapter is not None:
        return Target(model, None, str(adapter))
    raise RolecraftError(f"the model '{model}' does not exist: use a character id, an adapter or the base model "
                         f"'{base_model_id(engine)}' (GET /v1/models lists them)",
                         code="model_not_found", status=404, param="model")


def list_models(engine: Engine) -> ModelList:
    models = [Model(id=c.id, created=_epoch(c.created_at), owned_by="rolecraft",
                    rolecraft=ModelInfo(kind="character", name=c.name)) for c in engine.store.list_characters()]
    models.append(Model(id=base_model_id(engine), created=0, owned_by="rolecraft",
                        rolecraft=ModelInfo(kind="base_model", name=base_model_id(engine))))
    models += [Model(id=name, created=int(path.stat().st_mtime), owned_by="rolecraft",
                     rolecraft=ModelInfo(kind="adapter", name=base_model_id(engine)))
               for name, path in installed_adapters(engine.settings).items() if not engine.store.has_character(name)]
    return ModelList(data=models)


def get_model(engine: Engine, model: str) -> Model:
    target = resolve(engine, model)
    return next(m for m in list_models(engine).data if m.id == target.id)
