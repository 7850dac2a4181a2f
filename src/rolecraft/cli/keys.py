"""`rolecraft keys`: API keys for `rolecraft serve` (create, list, revoke); secrets are shown once."""

from __future__ import annotations

import click

from rolecraft.settings import Settings
from rolecraft.store import Store
from rolecraft.store.keys import create_key, list_keys, revoke_key


def _store(ctx: click.Context) -> Store:
    settings: Settings = ctx.find_root().obj
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_url)
    ctx.call_on_close(store.close)
    return store


@click.group("keys")
def command() -> None:
    """Manage API keys for the server (stored hashed; a secret is printed only when created)."""


@command.command("create")
@click.argument("name")
@click.option("--rate-limit", type=click.IntRange(min=1), help="Requests a minute for this key (default: the "
              "server's rate_limit_per_minute).")
@click.pass_context
def create(ctx: click.Context, name: str, rate_limit: int | None) -> None:
    """Create a key called NAME and print its secret (stdout, alone on its line)."""
    key, secret = create_key(_store(ctx), name, rate_limit=rate_limit)
    click.echo(f"created key {key.id} ({key.name}); store the secret now, it is not shown again:", err=True)
    click.echo(secret)


@command.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List keys (never their secrets)."""
    for key in list_keys(_store(ctx)):
        status = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        limit = f"{key.rate_limit}/min" if key.rate_limit else "default rate"
        click.echo(f"{key.id}  {key.name:<24} {key.created_at:%Y-%m-%d %H:%M}  {limit:<14} {status}")


@command.command("revoke")
@click.argument("key_id")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key by id; requests with it fail from now on."""
    key = revoke_key(_store(ctx), key_id)
    click.echo(f"revoked key {key.id} ({key.name})")
