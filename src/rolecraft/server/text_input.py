"""Text that may enter the engine: valid Unicode without NUL bytes, within the per-message and per-request caps.

Checked at the edge, in a worker thread, before anything is tokenised on the one
model thread: a lone surrogate ("\\ud800", legal in JSON, not in UTF-8) would
crash the tokenizer, a NUL byte is refused by PostgreSQL, and a huge body would
hold the model thread for seconds while everyone else waits. Each is a 400
naming the field, the same on every route and database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rolecraft.errors import RolecraftError


def check_text(text: str, param: str) -> str:
    """`text` if it is valid UTF-8 text without NUL bytes; otherwise a 400 naming `param`."""
    if "\x00" in text:
        raise RolecraftError(f"{param} contains a NUL byte (\\u0000), which text may not hold",
                             code="invalid_text", param=param)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RolecraftError(f"{param} is not valid Unicode: a lone surrogate {text[exc.start]!r} at "
                             f"character {exc.start}", code="invalid_text", param=param) from None
    return text


@dataclass
class TextLimits:
    """Caps for one request: each message, and all its text together."""

    per_message: int
    per_request: int
    seen: int = field(default=0, init=False)

    def check(self, text: str, param: str) -> str:
        check_text(text, param)
        if len(text) > self.per_message:
            raise RolecraftError(f"{param} has {len(text)} characters; the limit per message is {self.per_message}",
                                 code="message_too_long", param=param)
        self.seen += len(text)
        if self.seen > self.per_request:
            raise RolecraftError(f"the request's messages hold more than {self.per_request} characters",
                                 code="request_too_long", param=param)
        return text
