"""The `rolecraft` command line: one module per command group, errors rendered as one line."""

from __future__ import annotations

import sys

import click

from rolecraft import __version__
from rolecraft.cli.options import build_settings, settings_options
from rolecraft.errors import RolecraftError


class RolecraftGroup(click.Group):
    """Renders RolecraftError as `error: <message>` and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except RolecraftError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)


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


def _register() -> None:
    from rolecraft.cli import characters, chat, data, eval, keys, models, personas, serve, sessions, talk, train

    for module in (chat, characters, sessions, personas, models, serve, keys, eval, data, train, talk):
        main.add_command(module.command)


_register()
