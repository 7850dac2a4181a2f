"""`rolecraft chat`: talk to a character in the terminal, or script it through stdin."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from rolecraft.cli.context import engine_from
from rolecraft.conversation import ChatSession, Engine, Turn
from rolecraft.conversation.group import GroupSession
from rolecraft.errors import RolecraftError
from rolecraft.voice.sentences import SentenceSplitter

HELP = """Commands:
  /regen            new reply to your last message (a swipe)
  /swipes           list alternatives for the last message;  /swipe N  to pick one
  /edit TEXT        replace your last message and get a new reply
  /reply TEXT       replace the character's last reply with TEXT
  /history          show the conversation;  /branch ID  continue from message ID
  /image PATH [TEXT] show the character a picture (with optional words)
  /audio PATH       say something with a recorded clip (WAV/FLAC/OGG/MP3)
  /lore PATH        attach a lorebook file (SillyTavern world info or lorebook_v3) to this session
  /state            show what the character tracks about you; /state JSON to replace it
  /leave NAME, /join NAME, /mute NAME, /unmute NAME, /as NAME   group scenes: presence, muting, who speaks
  /prompt           show the prompt the next reply will be built from
  /quit             leave (the session is saved after every turn)"""


def _lines(interactive: bool) -> Iterator[str]:
    while True:
        try:
            line = input("You: ") if interactive else sys.stdin.readline()
        except EOFError:
            return
        if not interactive and line == "":
            return
        yield line.rstrip("\n")


def _show_prompt(session: ChatSession, turn: Turn) -> None:
    plan = turn.plan
    click.echo(f"----- prompt: {plan.prompt_tokens} tokens of {plan.budget}; dropped {plan.dropped_messages} "
               f"old messages; examples {'in' if plan.examples_included else 'out'} -----", err=True)
    click.echo(session.engine.backend.render(plan.messages), err=True)
    click.echo("----- end of prompt -----", err=True)


@dataclass
class Output:
    """How replies are shown: prompt debugging, expression labels, speech files."""

    show_prompt: bool = False
    show_expression: bool = False
    speak: Path | None = None


def _stream(session: ChatSession, turn: Turn, out: Output) -> None:
    if out.show_prompt:
        _show_prompt(session, turn)
    click.echo(f"{(turn.speaker or session.character).name}: ", nl=False)
    splitter, clips, stamp = (SentenceSplitter() if out.speak else None), [], session.info.message_count
    try:
        for piece in turn:
            click.echo(piece, nl=False)
            sys.stdout.flush()
            if splitter:
                clips += [_speak(session, s, out.speak / f"{session.id}-{stamp:05d}-{len(clips):02d}.wav")
                          for s in splitter.feed(piece)]
    except KeyboardInterrupt:
        click.echo("\n(interrupted: this reply was not saved)")
        return
    expression = turn.result.messages[-1].meta.get("expression") if turn.result else None
    click.echo(f"  [{expression}]" if out.show_expression and expression else "")
    if splitter:
        clips += [_speak(session, s, out.speak / f"{session.id}-{stamp:05d}-{len(clips):02d}.wav")
                  for s in splitter.flush()]
        for clip in filter(None, clips):
            click.echo(f"(speech: {clip})", err=True)


def _speak(session: ChatSession, sentence: str, path: Path) -> Path | None:
    """Synthesise one sentence of the reply as soon as it is complete; None for a wordless one."""
    from rolecraft.voice import speakable, synthesize

    if not any(ch.isalnum() for ch in speakable(sentence)):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(synthesize(sentence, session.engine.settings.voice, character=session.character))
    return path


def _command(session: ChatSession, line: str, out: Output) -> bool:
    """Run a slash command; False means quit."""
    name, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    if name in {"quit", "exit", "q"}:
        return False
    if name == "help":
        click.echo(HELP)
    elif name in {"regen", "regenerate"}:
        _stream(session, session.regenerate(), out)
    elif name == "edit":
        _stream(session, session.edit_last_user(arg), out)
    elif name == "reply":
        session.edit_last_reply(arg)
        click.echo("(reply replaced)")
    elif name == "swipes":
        for i, msg in enumerate(session.swipes()):
            mark = "*" if msg.id == session.info.head_id else " "
            click.echo(f"{mark}{i}: [{msg.id}] {msg.content[:100]}")
    elif name == "swipe":
        _pick_swipe(session, arg)
    elif name == "history":
        for msg in session.history():
            click.echo(f"[{msg.id}] {msg.name}: {msg.content}")
    elif name == "branch":
        session.branch(_int(arg, "/branch needs a message id"))
        click.echo(f"(continuing from message {arg})")
    elif name == "image":
        path, _, words = arg.partition(" ")
        _stream(session, session.send(words, images=[_read(path)]), out)
    elif name == "audio":
        _stream(session, session.send(audio=_read(arg)), out)
    elif name in GROUP_COMMANDS:
        _group_command(session, name, arg, out)
    elif name == "lore":
        click.echo(f"(lorebook attached: {session.attach_lorebook(arg)} entries)")
    elif name == "state":
        _state(session, arg)
    elif name == "prompt":
        _show_prompt(session, session.send(arg or "(your next message)"))
    else:
        click.echo(f"unknown command /{name}; /help lists them")
    return True


GROUP_COMMANDS = {"leave", "join", "mute", "unmute", "as"}


def _group_command(session: ChatSession, name: str, arg: str, out: Output) -> None:
    if not isinstance(session, GroupSession):
        raise RolecraftError(f"/{name} works in group scenes (rolecraft chat --group A,B)", code="invalid_command")
    if name in {"leave", "join"}:
        session.set_present(arg, name == "join")
    elif name in {"mute", "unmute"}:
        session.set_muted(arg, name == "mute")
    else:
        _stream(session, session.speak_now(arg), out)
        return
    click.echo(f"({arg}: {name})")


def _send(session: ChatSession, line: str, images: list[bytes], out: Output) -> None:
    if isinstance(session, GroupSession):
        for turn in session.send_group(line):
            _stream(session, turn, out)
        return
    _stream(session, session.send(line, images=images), out)


def _read(path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise RolecraftError(f"cannot read {path!r}: {exc.strerror}", code="file_not_found") from None


def _state(session: ChatSession, arg: str) -> None:
    if arg:
        session.set_state(arg)
    click.echo(session.state().model_dump_json(indent=2, exclude_defaults=not arg))


def _int(text: str, message: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RolecraftError(message, code="invalid_command") from None


def _pick_swipe(session: ChatSession, arg: str) -> None:
    swipes = session.swipes()
    index = _int(arg, "/swipe needs a number from /swipes")
    if not 0 <= index < len(swipes):
        raise RolecraftError(f"there are {len(swipes)} swipes; no #{index}", code="invalid_command")
    session.branch(swipes[index].id)
    click.echo(f"{session.character.name}: {swipes[index].content}")


def _open(engine: Engine, character: str, new: bool, session_id: str | None, greeting: int,
          persona: str | None, group: str | None) -> ChatSession:
    if session_id:
        return engine.session(session_id)
    if group:
        session = engine.new_group([c.strip() for c in group.split(",") if c.strip()], persona_id=persona)
        click.echo(f"(new group scene {session.id} with {', '.join(c.name for c in session.cast.values())})")
        click.echo(f"{session.character.name}: {session.history()[-1].content}")
        return session
    session = None if new else engine.resume(character)
    if session is None:
        session = engine.new_session(character, greeting=greeting, persona_id=persona)
        click.echo(f"(new session {session.id} with {session.character.name}; /help for commands)")
    else:
        click.echo(f"(resuming session {session.id}: {session.info.message_count} messages; /help for commands)")
    last = session.history()[-1:] if session.info.head_id else []
    for msg in last:
        click.echo(f"{msg.name}: {msg.content}")
    return session


@click.command("chat")
@click.argument("character", required=False)
@click.option("--new", is_flag=True, help="Start a new session instead of resuming the last one.")
@click.option("--session", "session_id", help="Resume this session id.")
@click.option("--greeting", default=0, show_default=True, help="Which greeting opens a new session.")
@click.option("--show-prompt", is_flag=True, help="Print the assembled prompt (to stderr) before each reply.")
@click.option("--group", help="Start a group scene with these character ids, comma separated.")
@click.option("--persona", help="Stored persona id to play as in a new session (see `rolecraft personas`).")
@click.option("--image", "image", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Show the character this picture with your first message.")
@click.option("--speak", is_flag=True, help="Speak every reply: one WAV per sentence under <home>/audio.")
@click.option("--show-expression", is_flag=True, help="Print each reply's expression label.")
@click.pass_context
def command(ctx: click.Context, character: str | None, new: bool, session_id: str | None, greeting: int,
            show_prompt: bool, group: str | None, persona: str | None, image: Path | None, speak: bool,
            show_expression: bool) -> None:
    """Chat with CHARACTER (default: the configured character). Reads turns from stdin when piped."""
    engine = engine_from(ctx)
    _ = engine.backend  # preloaded meanwhile (cli/__init__.py); nothing may print while llama.cpp loads
    session = _open(engine, character or engine.settings.character, new, session_id, greeting, persona, group)
    out = Output(show_prompt, show_expression, engine.settings.home / "audio" if speak else None)
    pending = [image.read_bytes()] if image else []
    interactive = sys.stdin.isatty()
    for line in _lines(interactive):
        if not line.strip():
            continue
        try:
            if line.startswith("/"):
                if not _command(session, line.strip(), out):
                    break
            else:
                _send(session, line, pending, out)
                pending = []
        except RolecraftError as exc:
            if not interactive:
                raise
            click.echo(f"error: {exc.message}", err=True)
