"""`rolecraft characters`: list, import, export and show character cards."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rolecraft.characters.cards import card_from_character
from rolecraft.characters.io import dump_character, load_character_file
from rolecraft.cli.context import engine_from
from rolecraft.errors import RolecraftError
from rolecraft.files import write_atomic

SPECS = {"v2": "chara_card_v2", "v3": "chara_card_v3"}


@click.group("characters")
def command() -> None:
    """Manage characters (Character Card V1/V2/V3 as PNG, JSON or CHARX)."""


@command.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List stored characters."""
    for info in engine_from(ctx).store.list_characters():
        click.echo(f"{info.id:<20} {info.name:<24} {info.source}")


@command.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--id", "char_id", help="Id to store it under (default: from its name).")
@click.pass_context
def import_(ctx: click.Context, path: Path, char_id: str | None) -> None:
    """Import a card file (PNG, JSON or CHARX)."""
    engine = engine_from(ctx)
    character = load_character_file(path, max_bytes=engine.settings.max_card_bytes)
    stored = engine.store.put_character(character, char_id=char_id)
    click.echo(f"imported {character.name} as {stored}")


@command.command("export")
@click.argument("character")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="File to write (default: <id>.<format>).")
@click.option("--format", "fmt", type=click.Choice(["png", "json", "charx"]), default="png", show_default=True)
@click.option("--spec", type=click.Choice(sorted(SPECS)), default="v3", show_default=True)
@click.pass_context
def export(ctx: click.Context, character: str, output: Path | None, fmt: str, spec: str) -> None:
    """Export CHARACTER (an id, or a unique name in any case) as a card file."""
    if fmt == "charx" and spec != "v3":
        raise RolecraftError("CHARX files are Character Card V3 only", code="invalid_option", param="spec")
    engine = engine_from(ctx)
    char_id = engine.store.resolve_character(character)
    target = output or Path(f"{char_id}.{fmt}")
    write_atomic(target, dump_character(engine.character(char_id), fmt, spec=SPECS[spec]))  # type: ignore[arg-type]
    click.echo(f"wrote {target}")


@command.command("show")
@click.argument("character_ref", metavar="CHARACTER")
@click.option("--json", "as_json", is_flag=True, help="Print the whole card as JSON.")
@click.pass_context
def show(ctx: click.Context, character_ref: str, as_json: bool) -> None:
    """Show CHARACTER (an id, or a unique name in any case)."""
    character = engine_from(ctx).character(character_ref)
    if as_json:
        click.echo(json.dumps(card_from_character(character), ensure_ascii=False, indent=2))
        return
    for label, value in [("Name", character.name), ("Description", character.description),
                         ("Personality", character.personality), ("Scenario", character.scenario),
                         ("Catchphrases", " | ".join(character.catchphrases)), ("Tags", ", ".join(character.tags)),
                         ("Greeting", character.first_mes),
                         ("Alternate greetings", str(len(character.alternate_greetings))),
                         ("Lorebook entries", str(len(character.character_book.entries))
                          if character.character_book else "0")]:
        if value:
            click.echo(f"{label}: {value}")
