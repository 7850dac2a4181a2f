"""Lorebook activation: which entries of the attached books enter this turn's prompt, and where.

The rules are SillyTavern's world-info scan (`checkWorldInfo`), which card
authors test their books against, restricted to what a chat engine without
SillyTavern's UI state needs:

* Window. `history` is the chat, newest message last; an entry sees the last
  N messages, N being the entry's `extensions.scan_depth` (or `@@scan_depth`),
  else the `scan_depth` argument, else the book's `scan_depth`, else 2
  (SillyTavern's default). Keys are looked for in each message on its own, so
  a key never matches across two messages.
* Activation. Disabled entries never activate; `constant` (or `@@activate`)
  entries always do; others need one primary key to match and, when
  `selective`, their secondary keys to satisfy `selectiveLogic` (0 AND ANY,
  1 NOT ALL, 2 NOT ANY, 3 AND ALL). `extensions.delay` N keeps an entry out
  until the chat has N messages.
* Inclusion groups (`extensions.group`, comma-separated): of the entries of one
  group that match in a pass only one activates: the highest-priority one with
  `group_override`, else one drawn with `group_weight` as weight; none if the
  group already has an active entry.
* Probability. An entry with `probability` < 100 (and `useProbability` not
  false) activates with that chance, drawn from `rng`; a failed roll is final
  for this turn.
* Budget. Matched entries are admitted in priority order (`priority`, else
  `insertion_order`; higher first; then book order, then entry order),
  constants included. SillyTavern's rule: once an entry does not fit, it and
  every lower-priority entry are dropped (`ignore_budget` entries excepted), so
  the lowest-priority entries always go first. Deviation: an entry larger than
  the whole budget is skipped with a warning and does not cut off the rest.
  The `token_budget` argument is one budget for all books; without it each
  book's own `token_budget` limits that book (none: unlimited).
* Recursion. When the book scans recursively (`recursive` argument, else the
  book's `recursive_scanning`, else off) the content of activated entries is
  scanned again, beside the window, for that book's entries, up to
  `max_recursion` further passes; each entry activates at most once, so A↔B
  loops end. `exclude_recursion` entries cannot be activated by it,
  `prevent_recursion` entries do not feed it, `delay_until_recursion` entries
  activate only in a recursive pass (level by level, like SillyTavern).
* Output. Activations come out sorted by `insertion_order` ascending (then
  book, then entry order): as in SillyTavern and the V3 spec, a lower order is
  added to the prompt earlier, so higher numbers land closer to the chat.
  Content is returned with its `@@decorator` lines removed and macros
  untouched: the caller expands them.

Not supported (stored and exported untouched): sticky/cooldown (they need
per-chat state), generation triggers, character filters, `match_persona_description`
and friends, group scoring, min activations, `{{char}}` macros inside keys.

A scan never raises for anything a book contains: bad regexes, wrong types in
`extensions` and oversized entries become `ScanResult.warnings`.

Speed: a book is compiled once (`compile_book`; `scan` caches `Lorebook`s by
content) into an index that finds all of a message's keys in one pass and
remembers the result, so a turn searches only the messages it has not seen and
then looks only at the entries whose keys were found.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic_core import PydanticSerializationError

from rolecraft.characters.model import Lorebook
from rolecraft.lorebook.rules import (
    AND_ANY,
    MAX_SCAN_DEPTH,
    NOT_ALL,
    NOT_ANY,
    EntryRules,
    KeyIndex,
    Position,
    Probe,
    Role,
    book_defaults,
    entry_rules,
)

DEFAULT_SCAN_DEPTH = 2  # SillyTavern's world_info_depth default
_CACHE_SIZE = 64
_cache: OrderedDict[tuple[int, int], CompiledBook] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Activation:
    """One activated entry: what to insert and where."""

    content: str
    position: Position
    depth: int  # for at_depth: messages counted from the end of the history
    role: Role
    order: int  # insertion_order: lower goes earlier in the prompt, higher closer to the chat
    source: str  # "<book name>#<entry id or index>"


@dataclass(frozen=True)
class ScanResult:
    """A turn's activations (in prompt order), problems met on the way, and entries the budget dropped."""

    activations: tuple[Activation, ...] = ()
    warnings: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class CompiledBook:
    """A lorebook read once: settings, each enabled entry's rules, and indexes that let a scan skip most entries."""

    name: str
    scan_depth: int | None
    token_budget: int | None
    recursive: bool | None
    entries: tuple[EntryRules, ...]
    warnings: tuple[str, ...]
    keys: KeyIndex
    by_key: dict[int, tuple[int, ...]]  # primary key id → positions in `entries` using it
    constants: tuple[int, ...]  # positions of entries that activate without keys
    deepest: int  # the widest entry-level scan_depth (0: none)
    delay_levels: frozenset[int]


def compile_book(book: Lorebook) -> CompiledBook:
    """Compile every entry's keys and settings; problems become `warnings`, never exceptions."""
    warnings: list[str] = []
    name = book.name or "lorebook"
    defaults = book_defaults(book, name, warnings.append)
    keys = KeyIndex()
    compiled = [entry_rules(e, i, name, defaults, keys, warnings.append) for i, e in enumerate(book.entries)]
    entries = tuple(e for e in compiled if e is not None)
    by_key: dict[int, list[int]] = {}
    for pos, rules in enumerate(entries):
        for key_id in {probe.key_id for probe in rules.keys}:
            by_key.setdefault(key_id, []).append(pos)
    budget = book.token_budget
    if budget is not None and budget <= 0:
        warnings.append(f"{name}: token_budget {budget} is not positive; the book is not budgeted")
        budget = None
    return CompiledBook(
        name=name,
        scan_depth=None if book.scan_depth is None else max(0, min(MAX_SCAN_DEPTH, book.scan_depth)),
        token_budget=budget,
        recursive=book.recursive_scanning,
        entries=entries,
        warnings=tuple(warnings),
        keys=keys.finish(),
        by_key={key_id: tuple(positions) for key_id, positions in by_key.items()},
        constants=tuple(i for i, rules in enumerate(entries) if rules.constant),
        deepest=max((r.scan_depth for r in entries if r.scan_depth is not None), default=0),
        delay_levels=frozenset(r.delay_level for r in entries if r.delay_level),
    )


def check_lorebook(book: Lorebook) -> list[str]:
    """What would go wrong when scanning `book` (invalid regexes, keyless entries, bad settings), for the user."""
    return list(compile_book(book).warnings)


def scan(
    books: Sequence[Lorebook | CompiledBook],
    history: Sequence[str],
    *,
    count_tokens: Callable[[str], int],
    rng: random.Random | None = None,
    scan_depth: int | None = None,
    token_budget: int | None = None,
    recursive: bool | None = None,
    max_recursion: int = 5,
) -> ScanResult:
    """The entries of `books` that `history` (whole chat, newest last) activates; see the module doc for rules.

    `scan_depth`, `token_budget` and `recursive` override the books' own settings when given.
    """
    state = _Scan([_compiled(book) for book in books], list(history), count_tokens, rng)
    state.configure(scan_depth, token_budget, recursive)
    state.run(max_recursion)
    return state.result()


def _compiled(book: Lorebook | CompiledBook) -> CompiledBook:
    """`book` compiled, from a small cache keyed by a hash of the book's content (so edits are always seen).

    The fingerprint costs about 0.3 ms for a 200-entry book; callers that scan every turn should keep the
    `CompiledBook` (`compile_book`) instead.
    """
    if isinstance(book, CompiledBook):
        return book
    try:
        text = book.model_dump_json()
    except PydanticSerializationError:  # lone surrogates, or objects that are not JSON: compile without caching
        return compile_book(book)
    key = (len(text), hash(text))  # str hashes are salted per process: a collision cannot be aimed at
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    compiled = compile_book(book)
    with _cache_lock:
        _cache[key] = compiled
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


@dataclass(frozen=True, slots=True)
class _BookScan:
    """One book's settings for this scan, after the call's overrides."""

    scan_depth: int
    recursive: bool
    pool: int  # budget pool: -1 for the call's budget, else the book position


@dataclass(frozen=True, slots=True)
class _Candidate:
    key: tuple[int, int]  # (book position, position in its `entries`)
    rules: EntryRules
    scan_depth: int
    recursive: bool
    pool: int


@dataclass(frozen=True, slots=True)
class _Window:
    """The keys found in the messages (and recursion text) an entry sees."""

    found: set[int]
    whole: set[int]

    def hit(self, probe: Probe) -> bool:
        return probe.key_id in (self.whole if probe.whole else self.found)


class _Scan:
    """One turn's scan: which entries match, the recursion buffer, budgets and what got in."""

    def __init__(
        self, books: list[CompiledBook], history: list[str], count_tokens: Callable[[str], int],
        rng: random.Random | None,
    ) -> None:  # fmt: skip
        self.books, self.history, self.count_tokens, self._rng = books, history, count_tokens, rng
        self.warnings = [warning for book in books for warning in book.warnings]
        self.settings: list[_BookScan] = []
        self.limits: dict[int, int | None] = {}
        self.used: dict[int, int] = {}
        self.overflowed: set[int] = set()
        self.activated: dict[tuple[int, int], _Candidate] = {}
        self.done: set[tuple[int, int]] = set()
        self.dropped: list[str] = []
        self.buffer: list[str] = []  # content of activated entries, for recursion
        self._candidates: dict[tuple[int, int], _Candidate] = {}
        self._found: dict[tuple[int, int], tuple[frozenset[int], frozenset[int]]] = {}
        self._windows: dict[tuple[int, int, bool], _Window] = {}

    def configure(self, scan_depth: int | None, token_budget: int | None, recursive: bool | None) -> None:
        for pos, book in enumerate(self.books):
            pool = -1 if token_budget is not None else pos
            self.limits[pool] = max(0, token_budget) if token_budget is not None else book.token_budget
            self.used[pool] = 0
            depth = next(d for d in (scan_depth, book.scan_depth, DEFAULT_SCAN_DEPTH) if d is not None)
            deep = recursive if recursive is not None else bool(book.recursive)
            self.settings.append(_BookScan(max(0, min(MAX_SCAN_DEPTH, depth)), deep, pool))

    def run(self, max_recursion: int) -> None:
        levels = sorted(set().union(*(book.delay_levels for book in self.books)))
        level = levels.pop(0) if levels else 0
        feeds = any(s.recursive for s in self.settings)
        for step in range(max(0, max_recursion) + 1):
            recursion = step > 0
            possible = self._possible(recursion)
            new = [c for c in possible if self._eligible(c, recursion, level) and self._matches(c, recursion)]
            admitted = self._admit(self._inclusion_groups(new))
            feed = [c.rules.content for c in admitted if c.rules.content.strip() and not c.rules.prevent_recursion]
            if feed and feeds:
                self.buffer.extend(feed)
                self._windows = {k: v for k, v in self._windows.items() if not k[2]}
            elif levels:
                level = levels.pop(0)
            else:
                break

    def result(self) -> ScanResult:
        ordered = sorted(self.activated.values(), key=lambda c: (c.rules.order, c.key))
        activations = tuple(
            Activation(r.content, r.position, r.depth, r.role, r.order, r.source)
            for r in (c.rules for c in ordered)
            if r.content.strip()
        )
        return ScanResult(activations, tuple(dict.fromkeys(self.warnings)), tuple(self.dropped))

    def _possible(self, recursion: bool) -> list[_Candidate]:
        """The entries that may match in this pass, in priority order: constants and those a found key points at."""
        out: list[_Candidate] = []
        for pos, (book, settings) in enumerate(zip(self.books, self.settings, strict=True)):
            if recursion and not settings.recursive and not book.delay_levels:
                continue
            window = self._window(pos, max(settings.scan_depth, book.deepest), recursion and settings.recursive)
            picks = set(book.constants)
            for key_id in window.found:
                picks.update(book.by_key.get(key_id, ()))
            out.extend(self._candidate(pos, i) for i in picks)
        out.sort(key=lambda c: (-c.rules.rank, c.key))
        return out

    def _candidate(self, pos: int, i: int) -> _Candidate:
        c = self._candidates.get((pos, i))
        if c is None:
            rules, settings = self.books[pos].entries[i], self.settings[pos]
            depth = settings.scan_depth if rules.scan_depth is None else rules.scan_depth
            c = self._candidates[(pos, i)] = _Candidate((pos, i), rules, depth, settings.recursive, settings.pool)
        return c

    def _window(self, pos: int, depth: int, with_buffer: bool) -> _Window:
        """What an entry of book `pos` sees: the last `depth` messages, plus the recursion buffer when asked."""
        window = self._windows.get((pos, depth, with_buffer))
        if window is None:
            first = len(self.history) - min(depth, len(self.history))
            parts = [(i, self.history[i]) for i in range(first, len(self.history))]
            if with_buffer:
                parts += [(-1 - j, text) for j, text in enumerate(self.buffer)]
            found: set[int] = set()
            whole: set[int] = set()
            for part, text in parts:
                hit = self._found.get((pos, part))
                if hit is None:
                    hit = self._found[(pos, part)] = self.books[pos].keys.find(text)
                found |= hit[0]
                whole |= hit[1]
            window = self._windows[(pos, depth, with_buffer)] = _Window(found, whole)
        return window

    def _random(self) -> float:
        if self._rng is None:
            self._rng = random.Random()
        return self._rng.random()

    def _eligible(self, c: _Candidate, recursion: bool, level: int) -> bool:
        rules = c.rules
        if c.key in self.activated or c.key in self.done or len(self.history) < rules.min_messages:
            return False
        if recursion and c.recursive and rules.exclude_recursion:
            return False
        if rules.delay_level:
            return recursion and rules.delay_level <= level
        return not recursion or c.recursive

    def _matches(self, c: _Candidate, recursion: bool) -> bool:
        rules = c.rules
        if rules.constant:
            return True
        if not rules.keys:
            return False
        window = self._window(c.key[0], c.scan_depth, recursion and c.recursive)
        if not any(window.hit(key) for key in rules.keys):
            return False
        if not rules.secondary:
            return True
        hits = (window.hit(key) for key in rules.secondary)
        if rules.logic == AND_ANY:
            return any(hits)
        if rules.logic == NOT_ALL:
            return not all(hits)
        if rules.logic == NOT_ANY:
            return not any(hits)
        return all(hits)

    def _inclusion_groups(self, new: list[_Candidate]) -> list[_Candidate]:
        """Keep one entry per inclusion group (SillyTavern's filterByInclusionGroups, without scoring)."""
        grouped: dict[str, list[_Candidate]] = {}
        for c in new:
            for name in c.rules.groups:
                grouped.setdefault(name, []).append(c)
        if not grouped:
            return new
        taken = {name for c in self.activated.values() for name in c.rules.groups}
        losers: set[tuple[int, int]] = set()
        for name, members in grouped.items():
            alive = [m for m in members if m.key not in losers]
            if name in taken:
                losers.update(m.key for m in alive)
            elif len(alive) > 1:
                winner = self._group_winner(alive)
                losers.update(m.key for m in alive if m is not winner)
        return [c for c in new if c.key not in losers]

    def _group_winner(self, members: list[_Candidate]) -> _Candidate:
        overrides = [m for m in members if m.rules.group_override]
        if overrides:
            return overrides[0]  # members are in priority order
        total = sum(m.rules.group_weight for m in members)
        if total <= 0:
            return members[0]
        roll, reached = self._random() * total, 0.0
        for member in members:
            reached += member.rules.group_weight
            if roll <= reached:
                return member
        return members[-1]

    def _admit(self, new: list[_Candidate]) -> list[_Candidate]:
        admitted = []
        for c in new:
            if c.pool in self.overflowed and not c.rules.ignore_budget:
                self._drop(c)
            elif c.rules.probability < 100 and self._random() * 100 >= c.rules.probability:
                self.done.add(c.key)
            elif self._fits(c):
                self.activated[c.key] = c
                admitted.append(c)
        return admitted

    def _fits(self, c: _Candidate) -> bool:
        rules, limit = c.rules, self.limits[c.pool]
        if limit is None or rules.ignore_budget or not rules.content.strip():
            return True
        tokens = self.count_tokens(rules.content)
        if tokens > limit:
            self.warnings.append(f"{rules.source}: {tokens} tokens, more than the whole budget ({limit}); skipped")
            self.done.add(c.key)
            return False
        if self.used[c.pool] + tokens > limit:
            self.overflowed.add(c.pool)
            self._drop(c)
            return False
        self.used[c.pool] += tokens
        return True

    def _drop(self, c: _Candidate) -> None:
        self.done.add(c.key)
        self.dropped.append(c.rules.source)
