"""The `{{char}}` / `{{user}}` macros every card uses.

Cards are written once and played by many users, so their texts say `{{char}}`
and `{{user}}` (or the V1-era `<BOT>` / `<USER>`, and V3's `<char>`) instead of
names. All spellings are matched case-insensitively, braces may hold spaces
(`{{ Char }}`), and the text is scanned once, so a name that itself looks like
a macro is not expanded again. Macros we do not know (`{{random}}`, ...) are left
as they are for the prompt builder or the user to see.
"""

from __future__ import annotations

import re

_MACRO = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(bot|char|user)>", re.IGNORECASE)


def expand_macros(text: str, char: str, user: str) -> str:
    """Replace {{char}}/<BOT>/<char> with `char` and {{user}}/<USER> with `user`."""

    def replace(match: re.Match[str]) -> str:
        word = (match.group(1) or match.group(2)).lower()
        return user if word == "user" else char

    return _MACRO.sub(replace, text)
