"""Helpers shared by command modules: the Engine for the current invocation."""

from __future__ import annotations

import click

from rolecraft.conversation import Engine
from rolecraft.settings import Settings


def engine_from(ctx: click.Context) -> Engine:
    """One Engine per CLI invocation, closed when the command ends."""
    settings: Settings = ctx.find_root().obj
    engine = Engine(settings)
    ctx.call_on_close(engine.close)
    return engine
