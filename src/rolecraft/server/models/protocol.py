"""OpenAI's model object and list, with a rolecraft extra saying what each model is."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ModelInfo(BaseModel):
    """rolecraft-only: a character (talk to it by this id), the bare base model, or the base model through
    a LoRA adapter installed under <home>/adapters."""

    kind: Literal["character", "base_model", "adapter"]
    name: str


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    rolecraft: ModelInfo


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
