"""OpenAI messages → engine Messages: text parts joined, images and audio checked and handed to perception.

Reading (base64 decoding, image verification) is pure and runs in a worker
thread; `render` asks the engine's perception for each image or audio part and
runs on the model thread. Until the engine can perceive, a valid image or audio
part is refused with `unsupported_content` naming the part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rolecraft.conversation import Engine
from rolecraft.errors import RolecraftError
from rolecraft.messages import Message, Role
from rolecraft.server import media
from rolecraft.server.chat.protocol import AudioPart, ChatMessage, FilePart, ImagePart, RefusalPart, TextPart


@dataclass(frozen=True)
class Media:
    """A checked image or audio part: the Engine method that perceives it and the arguments it takes."""

    perceiver: str
    args: tuple
    param: str


@dataclass
class Incoming:
    """One request message, read and checked."""

    role: Role
    text: str
    media: list[Media] = field(default_factory=list)


def _unsupported(what: str, param: str) -> RolecraftError:
    return RolecraftError(f"{what} is not supported by this server", code="unsupported_content", param=param)


def _read_part(part: object, param: str, into: Incoming) -> None:
    if isinstance(part, TextPart):
        into.text += ("\n" if into.text else "") + part.text
    elif isinstance(part, RefusalPart):
        into.text += ("\n" if into.text else "") + part.refusal
    elif isinstance(part, ImagePart):
        media.image_from_url(part.image_url.url, param=f"{param}.image_url.url")
        into.media.append(Media("perceive_image", (part.image_url.url,), param))
    elif isinstance(part, AudioPart):
        where = f"{param}.input_audio.data"
        data = media.decode_base64(part.input_audio.data, param=where, what="the audio data", code="invalid_audio")
        audio = media.check_audio(data, param=where, declared=part.input_audio.format)
        into.media.append(Media("perceive_audio", (audio.data, audio.format), param))
    elif isinstance(part, FilePart):
        raise _unsupported("file input", param)


def read_message(message: ChatMessage, index: int) -> Incoming:
    """Check one message; a 400 naming the part that is wrong."""
    param = f"messages[{index}]"
    if message.role in ("tool", "function") or message.tool_calls or message.function_call:
        raise _unsupported("tool and function calling", f"{param}.role")
    role: Role = "system" if message.role == "developer" else message.role  # type: ignore[assignment]
    incoming = Incoming(role, "")
    if isinstance(message.content, str):
        incoming.text = message.content
    elif message.content is not None:
        for j, part in enumerate(message.content):
            _read_part(part, f"{param}.content[{j}]", incoming)
    elif role == "assistant" and message.refusal is not None:
        incoming.text = message.refusal
    else:
        raise RolecraftError(f"{param}.content is required", code="missing_required_parameter",
                             param=f"{param}.content")
    if role != "user" and incoming.media:
        raise _unsupported("image and audio parts outside user messages", incoming.media[0].param)
    return incoming


def read_messages(messages: list[ChatMessage]) -> list[Incoming]:
    return [read_message(m, i) for i, m in enumerate(messages)]


def render(engine: Engine, incoming: list[Incoming]) -> list[Message]:
    """Engine messages; each image or audio part becomes what perception made of it."""
    rendered = []
    for message in incoming:
        texts = [message.text] if message.text else []
        texts += [getattr(engine, p.perceiver)(*p.args) for p in message.media]
        rendered.append(Message(message.role, "\n".join(texts)))
    return rendered
