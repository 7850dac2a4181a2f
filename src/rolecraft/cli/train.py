"""`rolecraft train`: LoRA fine-tuning (SFT, DPO) of the configured model, and adapter export."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

from rolecraft.cli.options import build_model, model_options
from rolecraft.errors import RolecraftError
from rolecraft.settings import Settings
from rolecraft.training.config import TrainConfig
from rolecraft.training.runs import Trained, open_library


def _config(recipe: Path | None, given: dict[str, Any]) -> TrainConfig:
    values: dict[str, Any] = {}
    if recipe is not None:
        try:
            values = tomllib.loads(recipe.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RolecraftError(f"cannot read recipe {recipe}: {exc}", code="invalid_option",
                                 param="recipe") from exc
    values.update({k: v for k, v in given.items() if v not in (None, ())})
    return build_model(TrainConfig, values, "training options")


def _report(trained: Trained) -> None:
    run = trained.run
    click.echo(f"trained {run.steps} steps (from step {run.resumed_from}) in {run.wall_s:.1f} s, "
               f"{run.tokens_per_s:.0f} tokens/s")
    if trained.eval_before is not None:
        click.echo(f"eval loss {trained.eval_before:.4f} → {trained.eval_after:.4f}")
    click.echo(f"adapter (PEFT): {run.adapter}")
    if trained.gguf is not None:
        click.echo(f"adapter (llama.cpp GGUF): {trained.gguf}")
        click.echo(f"chat with it: rolecraft --adapter {trained.gguf.resolve()} chat")


def _attach(settings: Settings, char_id: str, trained: Trained) -> None:
    """Make a library character speak through the new adapter (its card names it)."""
    adapter = trained.gguf if settings.backend == "llama_cpp" else trained.run.adapter
    if adapter is None:
        raise RolecraftError("no adapter for the llama_cpp backend was exported (the base is not a GGUF)",
                             code="invalid_option", param="character")
    set_adapter(settings, char_id, adapter)


def _check_character(settings: Settings, char_id: str | None) -> None:
    """Fail before hours of training, not after, when --character names no library character."""
    if char_id is not None:
        open_library(settings).get_character(char_id)


def set_adapter(settings: Settings, char_id: str, adapter: Path | None) -> None:
    store = open_library(settings)
    character = store.get_character(char_id)
    path = str(adapter.resolve()) if adapter is not None else None
    store.put_character(character.model_copy(update={"adapter": path}), char_id=char_id, source="import")
    click.echo(f"{character.name} ({char_id}) now speaks through {path or 'the base model'}")


@click.group("train")
def command() -> None:
    """Fine-tune the model with LoRA on `rolecraft data` files; export adapters for chat."""


def _train_command(name: str, help_text: str) -> Any:
    def decorate(func: Any) -> Any:
        func = model_options(TrainConfig)(func)
        func = click.option("--character", "attach", metavar="ID",
                            help="Afterwards, set this library character's adapter to the result.")(func)
        func = click.option("--recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            help="TOML file with any of the options below (flags win).")(func)
        func = click.option("--quiet", is_flag=True, help="No progress bar.")(func)
        return command.command(name, help=help_text)(click.pass_context(func))

    return decorate


def _train(ctx: click.Context, objective: str, recipe: Path | None, attach: str | None, quiet: bool,
           given: dict[str, Any]) -> None:
    from rolecraft.training.runs import train_dpo, train_sft

    settings = ctx.find_root().obj
    _check_character(settings, attach)
    train = train_sft if objective == "sft" else train_dpo
    trained = train(settings, _config(recipe, given), progress=not quiet, log=click.echo)
    _report(trained)
    if attach:
        _attach(settings, attach, trained)


@_train_command("sft", "Supervised LoRA fine-tuning on the character's turns (TrainingSample JSONL).")
def sft(ctx: click.Context, recipe: Path | None, attach: str | None, quiet: bool, **given: Any) -> None:
    _train(ctx, "sft", recipe, attach, quiet, given)


@_train_command("dpo", "Preference LoRA training: chosen over rejected replies (PreferencePair JSONL).")
def dpo(ctx: click.Context, recipe: Path | None, attach: str | None, quiet: bool, **given: Any) -> None:
    _train(ctx, "dpo", recipe, attach, quiet, given)


@command.command("export")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--gguf", "gguf_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a llama.cpp LoRA GGUF here.")
@click.option("--merged", type=click.Path(file_okay=False, path_type=Path),
              help="Write the base with the adapter merged in (safetensors folder) here.")
@click.option("--base", help="Base model of the adapter [default: the one recorded when it was trained].")
@click.pass_context
def export(ctx: click.Context, adapter: Path, gguf_out: Path | None, merged: Path | None, base: str | None) -> None:
    """Convert a trained PEFT adapter folder: to GGUF for llama.cpp and/or merged into its base."""
    from rolecraft.training.export import lora_to_gguf
    from rolecraft.training.runs import export_merged

    if gguf_out is None and merged is None:
        raise RolecraftError("nothing to do: give --gguf FILE and/or --merged FOLDER", code="invalid_option",
                             param="gguf")
    if gguf_out is not None:
        click.echo(f"wrote {lora_to_gguf(adapter, gguf_out)}")
    if merged is not None:
        click.echo(f"wrote {export_merged(ctx.find_root().obj, adapter, merged, base)}")


@command.command("attach")
@click.argument("char_id")
@click.argument("adapter", required=False, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def attach(ctx: click.Context, char_id: str, adapter: Path | None) -> None:
    """Make library character CHAR_ID speak through ADAPTER (.gguf for llama_cpp, a PEFT folder for
    transformers); without ADAPTER, back to the base model."""
    set_adapter(ctx.find_root().obj, char_id, adapter)
