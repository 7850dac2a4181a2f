"""`rolecraft sessions`: list, show and delete stored conversations."""

from __future__ import annotations

import click

from rolecraft.cli.context import engine_from


@click.group("sessions")
def command() -> None:
    """Manage stored chat sessions."""


@command.command("list")
@click.argument("character", required=False)
@click.pass_context
def list_(ctx: click.Context, character: str | None) -> None:
    """List sessions (of CHARACTER: an id or a name), most recent first."""
    store = engine_from(ctx).store
    for info in store.list_sessions(store.resolve_character(character) if character else None):
        click.echo(f"{info.id}  {info.character_id:<16} {info.message_count:>5} messages  "
                   f"{info.updated_at:%Y-%m-%d %H:%M}")


@command.command("show")
@click.argument("session_id")
@click.option("--tree", is_flag=True, help="Show every branch and swipe, not just the current path.")
@click.pass_context
def show(ctx: click.Context, session_id: str, tree: bool) -> None:
    """Print a session's conversation."""
    store = engine_from(ctx).store
    info = store.get_session(session_id)
    click.echo(f"session {info.id} with {info.character_id}, {info.message_count} messages")
    if tree:
        for msg in store.all_messages(session_id):
            mark = "*" if msg.id == info.head_id else " "
            parent = "-" if msg.parent_id is None else msg.parent_id
            click.echo(f"{mark}{'  ' * msg.depth}[{msg.id} <- {parent}] {msg.name}: {msg.content}")
        return
    for msg in store.path(session_id):
        click.echo(f"[{msg.id}] {msg.name}: {msg.content}")


@command.command("delete")
@click.argument("session_id")
@click.pass_context
def delete(ctx: click.Context, session_id: str) -> None:
    """Delete a session and all its messages."""
    engine_from(ctx).delete_session(session_id)
    click.echo(f"deleted session {session_id}")
