"""`rolecraft serve`: the HTTP API (OpenAI-compatible + native REST) on uvicorn."""

from __future__ import annotations

import importlib.util
import os

import click

from rolecraft.conversation import Engine
from rolecraft.errors import missing_extra
from rolecraft.settings import Settings

SERVER_PACKAGES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "multipart": "python-multipart"}


def _check_installed() -> None:
    for module, package in SERVER_PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            raise missing_extra(package, "server")


@click.command("serve")
@click.option("--host", help="Address to listen on [default: 127.0.0.1] (env ROLECRAFT_HOST).")
@click.option("--port", type=int, help="Port [default: 8765] (env ROLECRAFT_PORT).")
@click.option("--workers", type=int, help="Server processes, each with its own model [default: 1].")
@click.option("--require-api-key/--no-require-api-key", default=None,
              help="Demand API keys (default: only when not listening on loopback).")
@click.pass_context
def command(ctx: click.Context, host: str | None, port: int | None, workers: int | None,
            require_api_key: bool | None) -> None:
    """Serve the API: /v1/chat/completions, /v1/models, /v1/audio/*, /v1/characters, /v1/sessions, /health."""
    _check_installed()
    import uvicorn

    from rolecraft.server.app import SETTINGS_ENV, app_from_environment, settings_payload
    from rolecraft.server.config import server_settings

    settings: Settings = ctx.find_root().obj
    server = server_settings(settings, host=host, port=port, workers=workers, require_api_key=require_api_key)
    server.check()
    Engine(settings).close()  # migrate the database and install samples once, before any worker starts
    mode = "API keys required" if server.keys_required else "local single-user mode, no key needed"
    click.echo(f"rolecraft serving {settings.model} ({mode})", err=True)
    click.echo(f"web app: http://{server.host}:{server.port}/   OpenAI API: http://{server.host}:{server.port}/v1",
               err=True)
    os.environ[SETTINGS_ENV] = settings_payload(settings, server)
    target = "rolecraft.server.app:app_from_environment" if server.workers > 1 else app_from_environment
    uvicorn.run(target, factory=True, host=server.host, port=server.port, workers=server.workers,
                log_level="warning", timeout_graceful_shutdown=5)
