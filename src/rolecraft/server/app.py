"""The FastAPI application: lifespan (engine + model thread), middleware, error handlers, routers, web app.

`create_app` builds one app from settings; `app_from_environment` is the
factory uvicorn's worker processes call (the parent passes its settings
through one environment variable, so flags given to `rolecraft serve` reach
every worker).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.types import Scope

from rolecraft import __version__
from rolecraft.backends import Backend
from rolecraft.conversation import Engine
from rolecraft.server import errors
from rolecraft.server.attachments.router import router as attachments_router
from rolecraft.server.audio.router import router as audio_router
from rolecraft.server.characters.router import router as characters_router
from rolecraft.server.chat.router import router as chat_router
from rolecraft.server.completions.router import router as completions_router
from rolecraft.server.config import ServerSettings
from rolecraft.server.kobold.router import router as kobold_router
from rolecraft.server.library.router import router as library_router
from rolecraft.server.limits import BodyLimit, limiter_for
from rolecraft.server.llamacpp.router import router as llamacpp_router
from rolecraft.server.models.router import router as models_router
from rolecraft.server.ollama.router import router as ollama_router
from rolecraft.server.realtime.router import router as realtime_router
from rolecraft.server.replica import ReplicaHeader
from rolecraft.server.runtime import Runtime
from rolecraft.server.scenes.router import router as scenes_router
from rolecraft.server.sessions.router import router as sessions_router
from rolecraft.server.state import ServerState, State
from rolecraft.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"
SETTINGS_ENV = "_ROLECRAFT_SERVE_SETTINGS"
ROUTERS = (chat_router, models_router, audio_router, characters_router, sessions_router, library_router,
           completions_router, llamacpp_router, kobold_router, ollama_router, attachments_router, realtime_router,
           scenes_router)


class WebApp(StaticFiles):
    """The web app's files, mounted under every path: another method than GET or HEAD on a path no
    route serves is a 404 (unknown URL), as a GET there is, not StaticFiles' 405."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            served = any(route.matches(scope)[0] != Match.NONE for route in scope["app"].routes
                         if not isinstance(route, Mount))
            raise StarletteHTTPException(405 if served else 404)
        return await super().get_response(path, scope)


class Health(BaseModel):
    status: str
    version: str
    backend: str
    model: str


def create_app(settings: Settings, server: ServerSettings, *, backend: Backend | None = None) -> FastAPI:
    """The application for one server process (`backend`: an already loaded one, e.g. in tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(Engine(settings, backend=backend))
        await runtime.call(lambda: runtime.engine.backend)  # load the model before the first request
        limiter = limiter_for(settings.rate_limit_shared, runtime.engine.store.engine)
        app.state.rolecraft = ServerState(runtime=runtime, server=server, limiter=limiter)
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(title="rolecraft", version=__version__, lifespan=lifespan,
                  description="Role-play with characters: OpenAI-compatible chat completions plus native REST.")
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/health", response_model=Health, tags=["server"])
    async def health(state: State) -> Health:
        """Liveness and what this process runs (no key needed)."""
        return Health(status="ok", version=__version__, backend=state.engine.settings.backend,
                      model=state.engine.settings.model)

    app.add_middleware(BodyLimit, max_bytes=server.max_body_bytes)
    if settings.replica_name:
        app.add_middleware(ReplicaHeader, name=settings.replica_name)
    if server.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=server.cors_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["X-Rolecraft-Session"])
    if STATIC_DIR.is_dir():
        app.mount("/", WebApp(directory=STATIC_DIR, html=True), name="web")
    return app


def settings_payload(settings: Settings, server: ServerSettings) -> str:
    """Both settings models as JSON, for `app_from_environment` in worker processes."""
    return json.dumps({"settings": settings.model_dump(mode="json"), "server": server.model_dump(mode="json")})


def app_from_environment() -> FastAPI:
    """uvicorn factory for worker processes: the settings the parent put in the environment."""
    payload = json.loads(os.environ[SETTINGS_ENV])
    return create_app(Settings(**payload["settings"]), ServerSettings(**payload["server"]))
