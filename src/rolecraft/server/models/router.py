"""Routes: GET /v1/models, GET /v1/models/{model}."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from rolecraft.server.auth import Caller
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.models import serving
from rolecraft.server.models.protocol import Model, ModelList
from rolecraft.server.state import State

router = APIRouter(prefix="/v1", tags=["models"], responses=ERROR_RESPONSES)


@router.get("/models", response_model=ModelList)
async def list_models(state: State, caller: Caller) -> ModelList:
    """The base model, its adapters, then the characters this caller can talk to (by id)."""
    return await run_in_threadpool(serving.list_models, state.engine, caller.owner)


@router.get("/models/{model:path}", response_model=Model)
async def get_model(model: str, state: State, caller: Caller) -> Model:
    """One model object."""
    return await run_in_threadpool(serving.get_model, state.engine, model, caller.owner)
