"""`rolecraft personas`: who you play, kept for new sessions."""

from __future__ import annotations

import click

from rolecraft.cli.context import engine_from


@click.group("personas")
def command() -> None:
    """Manage your personas (name + description shown to characters)."""


@command.command("add")
@click.argument("persona_id")
@click.option("--name", required=True, help="Your name in the story.")
@click.option("--description", default="", help="What characters know about you.")
@click.option("--default", "is_default", is_flag=True, help="Use it for new sessions unless told otherwise.")
@click.pass_context
def add(ctx: click.Context, persona_id: str, name: str, description: str, is_default: bool) -> None:
    """Add or replace persona PERSONA_ID."""
    persona = engine_from(ctx).store.put_persona(persona_id, name, description, default=is_default)
    click.echo(f"saved persona {persona.id} ({persona.name}){' as default' if persona.is_default else ''}")


@command.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List personas; * marks the default."""
    for p in engine_from(ctx).store.list_personas():
        click.echo(f"{'*' if p.is_default else ' '} {p.id:<16} {p.name:<20} {p.description[:60]}")


@command.command("delete")
@click.argument("persona_id")
@click.pass_context
def delete(ctx: click.Context, persona_id: str) -> None:
    """Delete persona PERSONA_ID."""
    engine_from(ctx).store.delete_persona(persona_id)
    click.echo(f"deleted persona {persona_id}")
