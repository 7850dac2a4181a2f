"""One lorebook entry's rules, read once: how its keys match text and where its content goes.

Cards and SillyTavern spread an entry's settings over the Character Card V2/V3
fields (`keys`, `case_sensitive`, `use_regex`, `position`, ...) and
`extensions` (SillyTavern's `selectiveLogic`, `depth`, `role`, `probability`,
`scan_depth`, `match_whole_words`, ...). `entry_rules` reads both once per book
and turns every key into a `Probe` into the book's `KeyIndex` (Aho-Corasick
automata plus compiled regexes), which finds every key of the book in a message
in one pass. `extensions` may hold any JSON value: a bad one
falls back to SillyTavern's default and leaves a warning naming the entry,
never an exception.

Key matching follows SillyTavern (`WorldInfoBuffer.matchKeys`):

* a key written `/pattern/flags` is a regex (flags `i m s` honoured; case and
  whole-word settings do not apply to it); with `use_regex` every other key is a
  regex too, case-insensitive unless the entry is case-sensitive. A regex that
  does not compile never matches and leaves a warning. JavaScript's `(?<name>`
  and `\\k<name>` are translated to Python's spelling. Like every key, a regex
  is tried on each message (and each activated entry's content) on its own, so
  `^` and `$` mean the start and end of a message;
* other keys are substrings, compared lower-cased unless case-sensitive;
* with `match_whole_words` a one-word key must not touch a word character on
  either side; keys of several words, and keys in scripts written without spaces
  (Chinese, Japanese, Korean, Thai, ...), fall back to substring matching.

SillyTavern writes `use_regex: true` on every entry it exports while treating
bare keys as plain text (only `/.../` keys are regexes there). An entry that
carries SillyTavern's extension fields is therefore matched the SillyTavern way:
`use_regex` does not turn its bare keys into regexes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import ahocorasick

from rolecraft.characters.model import Lorebook, LorebookEntry

Position = Literal["before_char", "after_char", "at_depth", "before_examples", "after_examples", "top_an", "bottom_an"]
Role = Literal["system", "user", "assistant"]

AND_ANY, NOT_ALL, NOT_ANY, AND_ALL = 0, 1, 2, 3  # SillyTavern's world_info_logic numbering
DEFAULT_DEPTH = 4  # SillyTavern's DEFAULT_DEPTH for "at depth" entries
DEFAULT_WEIGHT = 100  # inclusion-group weight
MAX_SCAN_DEPTH = 1000

# SillyTavern's numeric world_info_position; 7 ("outlet": only where a {{outlet}} macro asks) goes after the character.
_ST_POSITIONS: dict[int, Position] = {
    0: "before_char", 1: "after_char", 2: "top_an", 3: "bottom_an",
    4: "at_depth", 5: "before_examples", 6: "after_examples", 7: "after_char",
}  # fmt: skip
_POSITION_NAMES = frozenset(_ST_POSITIONS.values()) | {"at_depth"}
_ROLES: tuple[Role, ...] = ("system", "user", "assistant")
_ST_MARKERS = ("display_index", "selectiveLogic")  # written by SillyTavern's card export on every entry

_SLASHED = re.compile(r"^/([\s\S]+?)/([gimsuy]*)$")
_UNESCAPED_SLASH = re.compile(r"(?:^|[^\\])/")
_JS_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")
_JS_BACKREF = re.compile(r"\\k<(\w+)>")
_NO_SPACES_SCRIPT = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
)
_DECORATOR = re.compile(r"^(@{2,3})(\w+)\s*(.*)$")
_KNOWN_DECORATORS = frozenset({"activate", "dont_activate", "depth", "role", "scan_depth", "position"})

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Probe:
    """One compiled key: its id in the book's `KeyIndex`, to be found as a whole word when `whole`."""

    key_id: int
    whole: bool = False


class KeyIndex:
    """Every key of a book, so that one pass over a message finds all the keys it contains.

    Plain keys live in two Aho-Corasick automata (lower-cased and exact), regex keys are compiled
    patterns. Testing 600 keys one by one with `in` over a 3 KB window costs about a millisecond; the
    automata find every occurrence of every key in one pass (about 15 µs). Results are remembered per
    text, so a message is searched once, not once per turn.
    """

    _MEMO_SIZE = 256

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}  # (needle or pattern, "lower" | "exact" | "re<flags>") → id
        self._lengths: dict[int, int] = {}
        self._whole: set[int] = set()  # ids some entry wants as a whole word
        self._automata: dict[bool, ahocorasick.Automaton] = {}
        self._regexes: list[tuple[int, re.Pattern[str]]] = []
        self._memo: dict[str, tuple[frozenset[int], frozenset[int]]] = {}

    def plain(self, needle: str, *, lowered: bool, whole: bool) -> Probe:
        ident = (needle, "lower" if lowered else "exact")
        key_id = self._ids.get(ident)
        if key_id is None:
            key_id = self._ids[ident] = len(self._ids)
            self._lengths[key_id] = len(needle)
            automaton = self._automata.setdefault(lowered, ahocorasick.Automaton(ahocorasick.STORE_INTS))
            automaton.add_word(needle, key_id)
        if whole:
            self._whole.add(key_id)
        return Probe(key_id, whole)

    def regex(self, pattern: re.Pattern[str]) -> Probe:
        ident = (pattern.pattern, f"re{pattern.flags}")
        key_id = self._ids.get(ident)
        if key_id is None:
            key_id = self._ids[ident] = len(self._ids)
            self._regexes.append((key_id, pattern))
        return Probe(key_id)

    def finish(self) -> KeyIndex:
        for automaton in self._automata.values():
            automaton.make_automaton()
        return self

    def find(self, text: str) -> tuple[frozenset[int], frozenset[int]]:
        """The ids of the keys occurring in `text`, and of those occurring as whole words."""
        hit = self._memo.get(text)
        if hit is not None:
            return hit
        found: set[int] = set()
        whole: set[int] = set()
        for lowered, automaton in self._automata.items():
            hay = text.lower() if lowered else text
            for end, key_id in automaton.iter(hay):
                found.add(key_id)
                if key_id in self._whole and key_id not in whole and _bounded(hay, end - self._lengths[key_id], end):
                    whole.add(key_id)
        found.update(key_id for key_id, pattern in self._regexes if pattern.search(text))
        if len(self._memo) >= self._MEMO_SIZE:
            self._memo.clear()
        hit = self._memo[text] = (frozenset(found), frozenset(whole))
        return hit


def _bounded(hay: str, before: int, last: int) -> bool:
    """Whether the match ending at `last` (starting after `before`) touches no word character (`re`'s `\\w`)."""
    return (before < 0 or not _is_word(hay[before])) and (last + 1 == len(hay) or not _is_word(hay[last + 1]))


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


@dataclass(frozen=True, slots=True)
class EntryRules:
    """Everything the scan needs from one entry, read and validated once."""

    index: int
    source: str
    content: str
    keys: tuple[Probe, ...]
    secondary: tuple[Probe, ...]
    logic: int
    constant: bool
    position: Position
    depth: int
    role: Role
    order: int
    rank: int
    scan_depth: int | None
    probability: float
    exclude_recursion: bool
    prevent_recursion: bool
    delay_level: int
    min_messages: int
    ignore_budget: bool
    groups: tuple[str, ...]
    group_override: bool
    group_weight: float


def bare_keys_are_regex(entry: LorebookEntry) -> bool:
    """Whether `use_regex` makes this entry's keys regexes (not for SillyTavern's exports; see module doc)."""
    return entry.use_regex and not any(marker in entry.extensions for marker in _ST_MARKERS)


def entry_source(book_name: str, entry: LorebookEntry, index: int) -> str:
    """`<book name>#<entry id or index>`: how warnings and activations name an entry."""
    return f"{book_name}#{entry.id if entry.id not in (None, '') else index}"


def book_defaults(book: Lorebook, book_name: str, warn: Warn) -> tuple[bool | None, bool | None]:
    """The book-wide `case_sensitive` and `match_whole_words` from the book's `extensions` (None: not set)."""
    ext = _Ext(book.extensions, book_name, warn)
    return ext.flag("case_sensitive"), ext.flag("match_whole_words")


def entry_rules(
    entry: LorebookEntry, index: int, book_name: str, defaults: tuple[bool | None, bool | None], keys: KeyIndex,
    warn: Warn,
) -> EntryRules | None:
    """The compiled rules of one entry, or None when it can never activate (disabled, `@@dont_activate`).

    `defaults` are the book's (case_sensitive, match_whole_words); the entry's own settings win. The keys
    go into `keys`, the book's index.
    """
    source = entry_source(book_name, entry, index)
    ext = _Ext(entry.extensions, source, warn)
    content, decorators = _split_decorators(entry.content)
    if not entry.enabled or "dont_activate" in decorators:
        return None
    case = _first_bool(entry.case_sensitive, ext.flag("case_sensitive"), defaults[0])
    whole = _first_bool(ext.flag("match_whole_words"), defaults[1])
    regex = bare_keys_are_regex(entry)
    read = _KeyReader(keys, source, case, whole, regex, warn)
    primary = read(entry.keys)
    secondary = read(entry.secondary_keys) if entry.selective is True else ()
    constant = bool(entry.constant) or "activate" in decorators
    if not constant and not any(key.strip() for key in entry.keys):
        warn(f"{source}: no usable keys and not constant, so it never activates")
    position, depth, role = _placement(entry, ext, decorators, source, warn)
    scan_depth = _whole(decorators.get("scan_depth"), 0, MAX_SCAN_DEPTH)
    use_probability = ext.flag("useProbability") is not False and ext.flag("use_probability") is not False
    return EntryRules(
        index=index, source=source, content=content, keys=primary, secondary=secondary,
        logic=_logic(ext, source, warn), constant=constant, position=position, depth=depth, role=role,
        order=entry.insertion_order, rank=entry.insertion_order if entry.priority is None else entry.priority,
        scan_depth=scan_depth if scan_depth is not None else ext.number("scan_depth", None, 0, MAX_SCAN_DEPTH),
        probability=ext.number("probability", 100.0, 0, 100, integer=False) if use_probability else 100.0,
        exclude_recursion=bool(ext.flag("exclude_recursion")), prevent_recursion=bool(ext.flag("prevent_recursion")),
        delay_level=_delay_level(ext), min_messages=ext.number("delay", 0, 0, 10**9),
        ignore_budget=bool(ext.flag("ignore_budget")), groups=_groups(ext.raw("group")),
        group_override=bool(ext.flag("group_override")),
        group_weight=ext.number("group_weight", float(DEFAULT_WEIGHT), 0, 1e9, integer=False),
    )  # fmt: skip


def slashed_regex(key: str) -> tuple[str, str] | None:
    """(pattern, flags) when `key` is SillyTavern's `/pattern/flags` regex form (inner `/` escaped), else None."""
    match = _SLASHED.match(key.strip())
    if match is None or _UNESCAPED_SLASH.search(match[1]):
        return None
    return match[1].replace("\\/", "/"), match[2]


def compile_key(
    raw: str, *, case_sensitive: bool, whole_words: bool, regex: bool, keys: KeyIndex
) -> Probe | str | None:
    """A Probe for one key; None for a blank key; the problem (a string) for a regex that does not compile."""
    key = raw.strip()
    if not key:
        return None
    slashed = slashed_regex(key)
    if slashed is not None:
        flags = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
        compiled = _regex(slashed[0], sum(flags.get(f, 0) for f in set(slashed[1])))
    elif regex:
        compiled = _regex(key, 0 if case_sensitive else re.IGNORECASE)
    else:
        needle = key if case_sensitive else key.lower()
        whole = whole_words and len(needle.split()) == 1 and not _NO_SPACES_SCRIPT.search(needle)
        return keys.plain(needle, lowered=not case_sensitive, whole=whole)
    return compiled if isinstance(compiled, str) else keys.regex(compiled)


def _regex(pattern: str, flags: int) -> re.Pattern[str] | str:
    pattern = _JS_BACKREF.sub(r"(?P=\1)", _JS_NAMED_GROUP.sub("(?P<", pattern))
    try:
        return re.compile(pattern, flags)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        return str(exc) or type(exc).__name__


@dataclass(frozen=True)
class _KeyReader:
    """Compiles an entry's key lists with its settings; bad regexes become warnings."""

    keys: KeyIndex
    source: str
    case_sensitive: bool
    whole_words: bool
    regex: bool
    warn: Warn

    def __call__(self, raw_keys: list[str]) -> tuple[Probe, ...]:
        out: list[Probe] = []
        for key in raw_keys:
            compiled = compile_key(
                key, case_sensitive=self.case_sensitive, whole_words=self.whole_words, regex=self.regex, keys=self.keys
            )
            if isinstance(compiled, str):
                problem = f"is not a valid regular expression ({compiled}); it never matches"
                self.warn(f"{self.source}: key {key!r} {problem}")
            elif compiled is not None:
                out.append(compiled)
        return tuple(out)


class _Ext:
    """Typed reads from an `extensions` dict: wrong types fall back to the default with a warning."""

    def __init__(self, ext: dict[str, Any], source: str, warn: Warn) -> None:
        self.ext, self.source, self.warn = ext, source, warn

    def raw(self, key: str) -> Any:
        return self.ext.get(key)

    def flag(self, key: str) -> bool | None:
        value = self.ext.get(key)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        self.warn(f"{self.source}: extensions.{key} should be true or false, not {value!r}; ignored")
        return None

    def number(self, key: str, default: Any, low: float, high: float, *, integer: bool = True) -> Any:
        """A number clamped to [low, high] (whole when `integer`); `default` when missing or not a number."""
        value = self.ext.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.warn(f"{self.source}: extensions.{key} should be a number, not {value!r}; using {default!r}")
            return default
        clamped = max(low, min(high, value))
        return int(clamped) if integer else float(clamped)


def _first_bool(*values: bool | None) -> bool:
    return next((v for v in values if v is not None), False)


def _logic(ext: _Ext, source: str, warn: Warn) -> int:
    value = ext.raw("selectiveLogic")
    if value is None:
        value = ext.raw("selective_logic")
    if value is None:
        return AND_ANY
    if isinstance(value, int) and not isinstance(value, bool) and AND_ANY <= value <= AND_ALL:
        return value
    warn(f"{source}: unknown selectiveLogic {value!r} (0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL); using AND ANY")
    return AND_ANY


def _placement(
    entry: LorebookEntry, ext: _Ext, decorators: dict[str, str], source: str, warn: Warn
) -> tuple[Position, int, Role]:
    """Position (ST numeric `extensions.position` beats the card's string), depth and role; decorators win."""
    value = ext.raw("position")
    if isinstance(value, int) and not isinstance(value, bool) and value in _ST_POSITIONS:
        position = _ST_POSITIONS[value]
    elif isinstance(value, str) and value in _POSITION_NAMES:
        position = value
    else:
        if value is not None:
            warn(f"{source}: unknown extensions.position {value!r}; using the card's position")
        position = "before_char" if entry.position == "before_char" else "after_char"
    if decorators.get("position") in _POSITION_NAMES:
        position = decorators["position"]
    depth = ext.number("depth", DEFAULT_DEPTH, 0, 10**6)
    decorated_depth = _whole(decorators.get("depth"), 0, 10**6)
    if decorated_depth is not None:
        position, depth = "at_depth", decorated_depth
    return position, depth, _role(decorators.get("role", ext.raw("role")), source, warn)


def _role(value: Any, source: str, warn: Warn) -> Role:
    if value is None:
        return "system"
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(_ROLES):
        return _ROLES[value]
    if isinstance(value, str) and value.strip().lower() in _ROLES:
        return _ROLES[_ROLES.index(value.strip().lower())]
    warn(f"{source}: unknown role {value!r} (0 system, 1 user, 2 assistant); using system")
    return "system"


def _delay_level(ext: _Ext) -> int:
    value = ext.raw("delay_until_recursion")
    if value is True:
        return 1
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return int(value)
    return 0


def _groups(value: Any) -> tuple[str, ...]:
    if not isinstance(value, str):
        return ()
    return tuple(name for name in (part.strip() for part in value.split(",")) if name)


def _whole(text: str | None, low: int, high: int) -> int | None:
    if text is None:
        return None
    try:
        return max(low, min(high, int(text.strip())))
    except ValueError:
        return None


def _split_decorators(content: str) -> tuple[str, dict[str, str]]:
    """Strip the leading V3 `@@decorator value` lines; `@@@x` is read only when the decorator above is unknown."""
    lines = content.split("\n")
    found: dict[str, str] = {}
    previous_known = True
    taken = 0
    for line in lines:
        match = _DECORATOR.match(line.strip())
        if not line.strip().startswith("@@") or match is None:
            break
        taken += 1
        fallback, name, value = len(match[1]) == 3, match[2].lower(), match[3].strip()
        if fallback and previous_known:
            continue
        previous_known = name in _KNOWN_DECORATORS
        if previous_known and name not in found:
            found[name] = value
    if not taken:
        return content, found
    return "\n".join(lines[taken:]).strip("\n"), found
