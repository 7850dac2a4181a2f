"""OpenAI messages → what the model jobs take: text parts joined, images and audio checked and kept raw.

Reading (base64 decoding, image verification, text checks) is pure and runs in a
worker thread, before anything reaches the model thread. The pictures and
recordings stay raw bytes (`Incoming`): the model job hands them to the engine's
one perception path, which stores them as attachments in a session and
describes them for the model.
"""

from __future__ import annotations

from rolecraft.errors import RolecraftError
from rolecraft.messages import Role
from rolecraft.server import media
from rolecraft.server.chat.protocol import AudioPart, ChatMessage, FilePart, ImagePart, RefusalPart, TextPart
from rolecraft.server.model_jobs import Incoming
from rolecraft.server.text_input import TextLimits


def _unsupported(what: str, param: str) -> RolecraftError:
    return RolecraftError(f"{what} is not supported by this server", code="unsupported_content", param=param)


def _read_part(part: object, param: str, into: Incoming) -> None:
    if isinstance(part, TextPart):
        into.text += ("\n" if into.text else "") + part.text
    elif isinstance(part, RefusalPart):
        into.text += ("\n" if into.text else "") + part.refusal
    elif isinstance(part, ImagePart):
        media.image_from_url(part.image_url.url, param=f"{param}.image_url.url")
        into.images.append(part.image_url.url)
    elif isinstance(part, AudioPart):
        where = f"{param}.input_audio.data"
        data = media.decode_base64(part.input_audio.data, param=where, what="the audio data", code="invalid_audio")
        into.audio = media.check_audio(data, param=where, declared=part.input_audio.format).data
    elif isinstance(part, FilePart):
        raise _unsupported("file input", param)


def read_message(message: ChatMessage, index: int, limits: TextLimits) -> Incoming:
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
    if role != "user" and incoming.has_media:
        raise _unsupported("image and audio parts outside user messages", f"{param}.content")
    limits.check(incoming.text, f"{param}.content")
    return incoming


def read_messages(messages: list[ChatMessage], limits: TextLimits) -> list[Incoming]:
    """Every message checked; the last must hold something (words, a picture or a recording)."""
    incoming = [read_message(m, i, limits) for i, m in enumerate(messages)]
    last = incoming[-1]
    if last.role == "user" and not last.text.strip() and not last.has_media:
        raise RolecraftError("empty message", code="empty_message", param=f"messages[{len(incoming) - 1}].content")
    return incoming
