"""Routes: /v1/scenes — create, show, join/leave, player lines, speak, events, game state, witnessed messages."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from rolecraft.conversation.scene import GameState
from rolecraft.server.auth import Caller, Principal
from rolecraft.server.errors import ERROR_RESPONSES
from rolecraft.server.limits import check_reply_tokens
from rolecraft.server.runtime import Run
from rolecraft.server.scenes import serving
from rolecraft.server.scenes.protocol import (
    EventCreate,
    LineCreate,
    Member,
    Pictures,
    SceneCreate,
    SceneHistory,
    SceneOut,
    SceneTurnOut,
    Speak,
    StateOut,
    Witnessed,
)
from rolecraft.server.sessions.protocol import CHAR_ID, SESSION_ID, Deleted, Sampling
from rolecraft.server.state import ServerState, State
from rolecraft.server.streaming import DONE, EventStream, error_event, event, finish_unless_gone

router = APIRouter(prefix="/v1/scenes", tags=["scenes"], responses=ERROR_RESPONSES)
SceneId = Annotated[str, Path(pattern=SESSION_ID)]
CharacterId = Annotated[str, Path(pattern=CHAR_ID)]
TURN = {"response_model": SceneTurnOut, "responses": {200: {"content": {"text/event-stream": {}}}}}


@router.post("", response_model=SceneOut, status_code=201)
async def create(body: SceneCreate, state: State, caller: Caller) -> SceneOut:
    """Open a scene: its characters, the player, the actions they may take, the opening game state."""
    return await run_in_threadpool(serving.create, state.engine, body, caller)


@router.get("/{scene_id}", response_model=SceneHistory)
async def show(scene_id: SceneId, state: State, caller: Caller) -> SceneHistory:
    """The scene (cast, presence, actions) and its current path of messages."""
    return await run_in_threadpool(serving.show, state.engine, scene_id, caller)


@router.delete("/{scene_id}", response_model=Deleted)
async def delete(scene_id: SceneId, state: State, caller: Caller) -> Deleted:
    await run_in_threadpool(serving.owned_scene, state.engine, scene_id, caller)
    await run_in_threadpool(state.engine.delete_session, scene_id, caller.owner)
    return Deleted(id=scene_id)


@router.post("/{scene_id}/join", response_model=SceneOut)
async def join(scene_id: SceneId, body: Member, state: State, caller: Caller) -> SceneOut:
    """A character comes (back) into the scene: it witnesses what is said from now on."""
    return await run_in_threadpool(serving.presence, state.engine, scene_id, body.character, True, caller)


@router.post("/{scene_id}/leave", response_model=SceneOut)
async def leave(scene_id: SceneId, body: Member, state: State, caller: Caller) -> SceneOut:
    """A character leaves: what is said while it is away never reaches its prompt."""
    return await run_in_threadpool(serving.presence, state.engine, scene_id, body.character, False, caller)


@router.post("/{scene_id}/lines", **TURN)
async def line(scene_id: SceneId, body: LineCreate, request: Request, state: State, caller: Caller) -> Response:
    """The player says something (with pictures and a game-state change); the scene chooses who answers,
    or `character` does."""
    return await _answer(state, caller, scene_id, lambda images: serving.line(
        state.engine, scene_id, body.content, images, body.state, body.character, caller), body, request, body)


@router.post("/{scene_id}/speak", **TURN)
async def speak(scene_id: SceneId, body: Speak, request: Request, state: State, caller: Caller) -> Response:
    """Ask one character to speak now, unprompted."""
    return await _answer(state, caller, scene_id, lambda _: serving.speak(state.engine, scene_id, body.character,
                                                                          caller), body, request)


@router.post("/{scene_id}/events", **TURN)
async def post_event(scene_id: SceneId, body: EventCreate, request: Request, state: State,
                     caller: Caller) -> Response:
    """Something happens; present characters whose policy says so react (404 when nobody is in the scene)."""
    return await _answer(state, caller, scene_id, lambda images: serving.post_event(
        state.engine, scene_id, body, images, caller), body, request, body)


@router.get("/{scene_id}/state", response_model=StateOut)
async def get_state(scene_id: SceneId, state: State, caller: Caller) -> StateOut:
    """The game state at the current message of this branch, and how the characters read it."""
    return await run_in_threadpool(serving.game_state, state.engine, scene_id, caller)


@router.put("/{scene_id}/state", response_model=StateOut)
async def put_state(scene_id: SceneId, body: GameState, state: State, caller: Caller) -> StateOut:
    """Change the game state on its own (the fields sent replace those fields; the rest carries over)."""
    return await state.runtime.call(serving.game_state, state.engine, scene_id, caller, body, key=scene_id)


@router.get("/{scene_id}/witnessed/{character}", response_model=Witnessed)
async def witnessed(scene_id: SceneId, character: CharacterId, state: State, caller: Caller) -> Witnessed:
    """The messages one character was present for: all that its prompt can hold."""
    return await run_in_threadpool(serving.witnessed, state.engine, scene_id, character, caller)


async def _answer(state: ServerState, caller: Principal, scene_id: str, prepare: serving.Prepare,
                  sampling: Sampling, request: Request, pictures: Pictures | None = None) -> Response:
    """Check (the scene is the caller's, then the sampling and pictures), prepare on the model thread (bad
    input is a plain HTTP error, not an event in a stream), then run the replies."""
    await run_in_threadpool(serving.owned_scene, state.engine, scene_id, caller)
    overrides = sampling.overrides()
    check_reply_tokens(overrides, state.server.max_reply_tokens)
    images = await run_in_threadpool(pictures.image_bytes) if pictures is not None else []
    prepared = await state.runtime.call(prepare, images, key=scene_id)
    run = state.runtime.run(serving.scene_job(prepared, overrides), key=scene_id)
    if sampling.stream:
        return EventStream(_events(state, scene_id, run))
    if not await finish_unless_gone(run, request):
        return Response(status_code=499)
    assert run.result is not None
    out = await run_in_threadpool(serving.turn_out, state.engine, scene_id, run.result)
    return JSONResponse(out.model_dump(mode="json"))


async def _events(state: ServerState, scene_id: str, run: Run[serving.SceneOutcome]) -> AsyncGenerator[str, None]:
    try:
        async for piece in run.pieces():
            yield piece
        assert run.result is not None
        out = await run_in_threadpool(serving.turn_out, state.engine, scene_id, run.result)
        yield event({"turn": out.model_dump(mode="json")})
    except Exception as exc:
        yield error_event(exc, "scene stream")
    finally:
        run.cancel()
    yield DONE
