"""Running a REST turn (send, regenerate, edit) and answering with the stored messages, whole or streamed.

The stream is server-sent events: `{"delta": "..."}` per piece, then
`{"turn": TurnOut}` once the turn is stored, then `[DONE]`; an error arrives
as OpenAI's `{"error": {...}}` event.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from rolecraft.server.auth import Principal
from rolecraft.server.limits import check_reply_tokens
from rolecraft.server.model_jobs import Outcome, Start, session_job
from rolecraft.server.runtime import Run
from rolecraft.server.sessions import serving
from rolecraft.server.sessions.protocol import Sampling
from rolecraft.server.state import ServerState
from rolecraft.server.streaming import DONE, EventStream, error_event, event, finish_unless_gone


async def run_turn(state: ServerState, caller: Principal, session_id: str, start: Start, sampling: Sampling,
                   http: Request) -> Response:
    """Plan with `start`, generate, store; answer with the TurnOut (or stream it)."""
    check_reply_tokens(sampling.overrides(), state.server.max_reply_tokens)
    await run_in_threadpool(serving.owned_session, state.engine, session_id, caller)
    run = state.runtime.run(session_job(state.engine, session_id, start, sampling.overrides(), []),
                            key=session_id)
    if sampling.stream:
        return EventStream(_events(state, session_id, run))
    if not await finish_unless_gone(run, http):
        return Response(status_code=499)
    return JSONResponse((await _turn_out(state, session_id, run)).model_dump(mode="json"))


async def _turn_out(state: ServerState, session_id: str, run: Run[Outcome]) -> object:
    outcome = run.result
    assert outcome is not None
    return await run_in_threadpool(serving.turn_out, state.engine, session_id, outcome.stored, outcome)


async def _events(state: ServerState, session_id: str, run: Run[Outcome]) -> AsyncGenerator[str, None]:
    try:
        async for piece in run.pieces():
            yield event({"delta": piece})
        yield event({"turn": (await _turn_out(state, session_id, run)).model_dump(mode="json")})
    except Exception as exc:
        yield error_event(exc, "session turn stream")
    finally:
        run.cancel()
    yield DONE
