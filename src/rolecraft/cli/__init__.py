"""The `rolecraft` command line: one module per command group, errors rendered as one line."""

from __future__ import annotations

import importlib
import sys

import click

from rolecraft import __version__
from rolecraft.cli.options import build_settings, settings_options
from rolecraft.errors import RolecraftError

# command name → module (each exports `command`); imported only when that command runs, so
# `rolecraft chat` does not pay for the training and evaluation imports.
COMMANDS = {name: f"rolecraft.cli.{name}" for name in (
    "chat", "characters", "sessions", "personas", "models", "serve", "keys", "eval", "data", "train", "talk")}
# commands that reply soon after they start: the model loads while their modules import
PRELOAD = {"chat", "talk"}


class RolecraftGroup(click.Group):
    """Renders RolecraftError as `error: <message>` and exit code 1, never a traceback; loads command
    groups lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return importlib.import_module(COMMANDS[cmd_name]).command

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple:
        if args and args[0] in PRELOAD and not {"-h", "--help"} & set(args):
            from rolecraft.backends.registry import preload

            preload(build_settings(ctx.params))
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        from rolecraft.backends.registry import settle

        try:
            return super().invoke(ctx)
        except RolecraftError as exc:
            settle()  # a model still loading would swallow the message
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        except BaseException:
            settle()
            raise


@click.group(cls=RolecraftGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rolecraft")
@settings_options
@click.pass_context
def main(ctx: click.Context, **given: object) -> None:
    """rolecraft: role-play with characters on a local model.

    Every option below can also come from a ROLECRAFT_* environment variable or
    the config file (~/.rolecraft/config.toml, or ROLECRAFT_CONFIG).
    """
    ctx.obj = build_settings(given)
