"""Lorebooks (world info): which entries a turn activates, and standalone lorebook files.

The semantics are SillyTavern's world info and the Character Card V2/V3
`character_book`, so books written for those tools behave the same here:

    from rolecraft.lorebook import compile_book, load_lorebook_file, scan
    books = [compile_book(character.character_book), compile_book(load_lorebook_file("world.json"))]
    count = lambda text: backend.count_message(Message("system", text))
    result = scan(books, history, count_tokens=count)   # history: every message, newest last
    for hit in result.activations:      # content (macros not expanded), position, depth, role, order, source
        ...
    result.warnings                     # invalid regex keys, oversized entries, bad settings

Compile books once per session (`compile_book`); `scan` also accepts plain
`Lorebook`s and caches them by content, at the cost of fingerprinting them.

Pure data in, data out: no database, no prompt building, no I/O beyond the file
helpers. The context builder decides how activations become messages.
"""

from rolecraft.lorebook.files import (
    MAX_BYTES,
    SPEC_LOREBOOK_V3,
    dump_lorebook,
    load_lorebook,
    load_lorebook_file,
    lorebook_error,
)
from rolecraft.lorebook.scan import (
    DEFAULT_SCAN_DEPTH,
    Activation,
    CompiledBook,
    ScanResult,
    check_lorebook,
    compile_book,
    scan,
)

__all__ = [
    "DEFAULT_SCAN_DEPTH",
    "MAX_BYTES",
    "SPEC_LOREBOOK_V3",
    "Activation",
    "CompiledBook",
    "ScanResult",
    "check_lorebook",
    "compile_book",
    "dump_lorebook",
    "load_lorebook",
    "load_lorebook_file",
    "lorebook_error",
    "scan",
]
