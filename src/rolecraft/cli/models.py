"""`rolecraft models`: the models and backends rolecraft can use."""

from __future__ import annotations

import click

from rolecraft.backends import available_backends
from rolecraft.backends.adapters import installed_adapters
from rolecraft.backends.models import bundled_models


@click.group("models")
def command() -> None:
    """Models and backends."""


@command.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List bundled models, available backends and installed LoRA adapters."""
    settings = ctx.find_root().obj
    click.echo("Bundled models:")
    for model in bundled_models():
        click.echo(f"  {model['id']:<12} {model['size_bytes'] / 1e6:6.0f} MB  {model['description']}")
    click.echo("Other models: a local .gguf path, or hf:OWNER/REPO/FILE.gguf when online (--model).")
    click.echo(f"Backends: {', '.join(available_backends())} (in use: {settings.backend}, model {settings.model})")
    adapters = installed_adapters(settings)
    click.echo(f"Adapters in {settings.home / 'adapters'}: " + (", ".join(adapters) or "none")
               + (f" (default: {settings.adapter})" if settings.adapter else ""))
