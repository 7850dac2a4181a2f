"""OpenAI messages → what the model jobs take: text parts joined, images and audio checked and kept raw.

Reading (base64 decoding, image verification, text checks) is pure and runs in a
worker thread, before anything reaches the model thread. The pictures and
recordings stay raw bytes (`Incoming`): the model job hands them to the engine's
one perception path, which stores them as attachments in a session and
describes them for the model. Tool results (`role: "tool"`) and an assistant's
`tool_calls` become text in the conversation, since most chat templates have no
tool roles: a call reads as the JSON the model is constrained to write.
"""

from __future__ import annotations

import json
from typing import Any

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


def _calls_text(calls: list[dict[str, Any]], param: str) -> str:
    """An assistant's tool calls as the JSON the model is made to write ({"name", "arguments"} per line)."""
    lines = []
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call.get("function"), dict) else call
        name, arguments = function.get("name"), function.get("arguments", {})
        if not isinstance(name, str) or not name:
            raise RolecraftError(f"{param}.tool_calls[{j}] has no function name", code="invalid_value",
                                 param=f"{param}.tool_calls[{j}]")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                raise RolecraftError(f"{param}.tool_calls[{j}].function.arguments is not JSON", code="invalid_value",
                                     param=f"{param}.tool_calls[{j}].function.arguments") from None
        lines.append(json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False))
    return "\n".join(lines)


def _content_text(message: ChatMessage, param: str, into: Incoming) -> None:
    if isinstance(message.content, str):
        into.text = message.content
    elif message.content is not None:
        for j, part in enumerate(message.content):
            _read_part(part, f"{param}.content[{j}]", into)


def read_message(message: ChatMessage, index: int, limits: TextLimits, calls: dict[str, str]) -> Incoming:
    """Check one message; a 400 naming the part that is wrong. Tool results and an assistant's tool calls
    become text the model reads (`calls`: the names of the calls made so far, by id)."""
    param = f"messages[{index}]"
    role: Role = "system" if message.role in ("developer", "tool", "function") else message.role  # type: ignore[assignment]
    incoming = Incoming(role, "")
    _content_text(message, param, incoming)
    if message.role in ("tool", "function"):
        name = message.name or calls.get(message.tool_call_id or "", "") or "a tool"
        call = f" (call {message.tool_call_id})" if message.tool_call_id else ""
        incoming.text = f"Result of {name}{call}: {incoming.text}"
    elif message.tool_calls or message.function_call:
        made = message.tool_calls or [{"function": message.function_call}]
        calls.update({c["id"]: str((c.get("function") or {}).get("name", "")) for c in made if c.get("id")})
        incoming.text = "\n".join(filter(None, [incoming.text, _calls_text(made, param)]))
    elif message.content is None and role == "assistant" and message.refusal is not None:
        incoming.text = message.refusal
    elif message.content is None:
        raise RolecraftError(f"{param}.content is required", code="missing_required_parameter",
                             param=f"{param}.content")
    if role != "user" and incoming.has_media:
        raise _unsupported("image and audio parts outside user messages", f"{param}.content")
    limits.check(incoming.text, f"{param}.content")
    return incoming


def read_messages(messages: list[ChatMessage], limits: TextLimits) -> list[Incoming]:
    """Every message checked; the last must hold something (words, a picture or a recording)."""
    calls: dict[str, str] = {}
    incoming = [read_message(m, i, limits, calls) for i, m in enumerate(messages)]
    last = incoming[-1]
    if last.role == "user" and not last.text.strip() and not last.has_media:
        raise RolecraftError("empty message", code="empty_message", param=f"messages[{len(incoming) - 1}].content")
    return incoming
