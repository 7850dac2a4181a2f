"""Lorebook activation rules, one small hand-written case per rule (SillyTavern / Card V2-V3 semantics)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from rolecraft.characters.model import Lorebook, LorebookEntry
from rolecraft.lorebook import Activation, ScanResult, check_lorebook, compile_book, scan


def words(text: str) -> int:
    return len(text.split())


def entry(keys: list[str] | None = None, content: str = "", **fields: Any) -> LorebookEntry:
    return LorebookEntry(keys=keys or [], content=content or f"about {' '.join(keys or ['nothing'])}", **fields)


def book(*entries: LorebookEntry, **fields: Any) -> Lorebook:
    return Lorebook(name=fields.pop("name", "world"), entries=list(entries), **fields)


def run(books: Lorebook | list[Lorebook], history: list[str], **kwargs: Any) -> ScanResult:
    return scan(books if isinstance(books, list) else [books], history, count_tokens=words, **kwargs)


def contents(result: ScanResult) -> list[str]:
    return [a.content for a in result.activations]


# --- enabled, constant, primary keys --------------------------------------------------------------


def test_primary_key_any_match_activates() -> None:
    lore = book(entry(["dragon", "wyrm"], "Dragons breathe fire."), entry(["castle"], "The castle is old."))
    assert contents(run(lore, ["A wyrm flew by."])) == ["Dragons breathe fire."]
    assert contents(run(lore, ["Nothing here."])) == []


def test_constant_always_and_disabled_never() -> None:
    lore = book(
        entry([], "Always here.", constant=True),
        entry(["dragon"], "Disabled lore.", enabled=False),
        entry([], "Disabled constant.", constant=True, enabled=False),
    )
    assert contents(run(lore, ["a dragon"])) == ["Always here."]


def test_empty_content_is_not_returned_and_blank_keys_never_match() -> None:
    lore = book(entry(["dragon"], "   "), entry(["", "  "], "blank keys"))
    result = run(lore, ["dragon", ""])
    assert result.activations == ()
    assert any("world#1" in w and "never activates" in w for w in result.warnings)


# --- secondary keys and selective logic (SillyTavern numbering) ----------------------------------

LOGIC_CASES = [
    # logic, history, activates
    (0, "dragon and gold", True),  # AND ANY: one secondary present
    (0, "dragon alone", False),
    (1, "dragon and gold", True),  # NOT ALL: not every secondary present
    (1, "dragon gold cave", False),
    (2, "dragon alone", True),  # NOT ANY: no secondary present
    (2, "dragon and cave", False),
    (3, "dragon gold cave", True),  # AND ALL: every secondary present
    (3, "dragon and gold", False),
]


@pytest.mark.parametrize(("logic", "text", "activates"), LOGIC_CASES)
def test_selective_logic(logic: int, text: str, activates: bool) -> None:
    lore = book(entry(["dragon"], "hoard", secondary_keys=["gold", "cave"], selective=True,
                      extensions={"selectiveLogic": logic}))  # fmt: skip
    assert bool(run(lore, [text]).activations) is activates


def test_secondary_keys_ignored_unless_selective() -> None:
    lore = book(entry(["dragon"], "hoard", secondary_keys=["gold"], selective=False))
    assert contents(run(lore, ["dragon"])) == ["hoard"]


def test_unknown_selective_logic_warns_and_uses_and_any() -> None:
    lore = book(entry(["dragon"], "hoard", secondary_keys=["gold"], selective=True, extensions={"selectiveLogic": 9}))
    result = run(lore, ["dragon gold"])
    assert contents(result) == ["hoard"]
    assert any("selectiveLogic" in w for w in result.warnings)


# --- regex keys ------------------------------------------------------------------------------------


def test_slash_regex_key_with_flags() -> None:
    lore = book(entry(["/dra+gons?/i"], "regex lore"), entry(["/^Hello/"], "greeting"))
    assert contents(run(lore, ["The DRAAAGON roars."])) == ["regex lore"]
    assert contents(run(lore, ["hello there"])) == []  # no i flag: case matters
    assert contents(run(lore, ["Hi.", "Hello there"])) == ["greeting"]  # ^ is the start of a message


def test_use_regex_makes_bare_keys_regexes() -> None:
    lore = book(entry([r"sil(ver|ber)\s+moon"], "moon lore", use_regex=True))
    assert contents(run(lore, ["The SILBER   Moon rises"])) == ["moon lore"]


def test_invalid_regex_never_matches_and_warns() -> None:
    lore = book(entry(["/[unclosed/", "dragon"], "still works"), entry(["(oops"], "bad", use_regex=True, id=7))
    result = run(lore, ["a dragon and (oops"])
    assert contents(result) == ["still works"]
    assert any("world#0" in w and "[unclosed" in w for w in result.warnings)
    assert any("world#7" in w and "(oops" in w for w in result.warnings)
    assert check_lorebook(lore) == list(compile_book(lore).warnings)


def test_sillytavern_exports_keep_bare_keys_literal_despite_use_regex() -> None:
    # SillyTavern's card export writes use_regex: true on every entry but matches bare keys as text.
    st = entry(["C++", "*hug*"], "literal", use_regex=True, extensions={"display_index": 0, "selectiveLogic": 0})
    result = run(book(st), ["I love C++ a lot"])
    assert contents(result) == ["literal"]
    assert result.warnings == ()


def test_javascript_named_groups_are_translated() -> None:
    lore = book(entry([r"/(?<w>ha)\k<w>/"], "laugh"))
    assert contents(run(lore, ["hahaha"])) == ["laugh"]


# --- case sensitivity and whole words -----------------------------------------------------------


def test_case_insensitive_by_default() -> None:
    assert contents(run(book(entry(["Dragon"], "d")), ["DRAGON!"])) == ["d"]


@pytest.mark.parametrize(
    "lore",
    [
        book(entry(["Dragon"], "d", case_sensitive=True)),
        book(entry(["Dragon"], "d", extensions={"case_sensitive": True})),
        book(entry(["Dragon"], "d"), extensions={"case_sensitive": True}),
    ],
    ids=["entry field", "entry extension", "book extension"],
)
def test_case_sensitive_settings(lore: Lorebook) -> None:
    assert contents(run(lore, ["a dragon"])) == []
    assert contents(run(lore, ["a Dragon"])) == ["d"]


def test_entry_case_setting_beats_book() -> None:
    lore = book(entry(["Dragon"], "d", case_sensitive=False), extensions={"case_sensitive": True})
    assert contents(run(lore, ["a dragon"])) == ["d"]


def test_whole_words() -> None:
    lore = book(entry(["cat"], "feline", extensions={"match_whole_words": True}))
    assert contents(run(lore, ["concatenate", "cats"])) == []
    assert contents(run(lore, ["concatenate the (cat)!"])) == ["feline"]
    assert contents(run(book(entry(["cat"], "feline")), ["concatenate"])) == ["feline"]  # substring by default


def test_whole_words_multi_word_key_is_a_substring() -> None:
    lore = book(entry(["old king"], "k", extensions={"match_whole_words": True}))
    assert contents(run(lore, ["the bold kingdom"])) == ["k"]  # SillyTavern: phrases match as substrings


def test_whole_words_falls_back_to_substring_for_chinese() -> None:
    lore = book(entry(["林月"], "林月是剑客。", extensions={"match_whole_words": True}))
    assert contents(run(lore, ["我昨天见到林月了"])) == ["林月是剑客。"]


def test_whole_word_setting_from_book() -> None:
    lore = book(entry(["cat"], "feline"), extensions={"match_whole_words": True})
    assert contents(run(lore, ["concatenate"])) == []


# --- scan depth ---------------------------------------------------------------------------------

HISTORY = ["the dragon appears", "hello", "how are you", "fine"]


def test_default_scan_depth_is_two_messages() -> None:
    lore = book(entry(["dragon"], "d"), entry(["how"], "h"))
    assert contents(run(lore, HISTORY)) == ["h"]


def test_scan_depth_from_book_entry_and_call() -> None:
    lore = book(entry(["dragon"], "d"), scan_depth=4)
    assert contents(run(lore, HISTORY)) == ["d"]
    assert contents(run(lore, HISTORY, scan_depth=1)) == []  # the call overrides the book
    own = book(entry(["dragon"], "d", extensions={"scan_depth": 4}), scan_depth=1)
    assert contents(run(own, HISTORY, scan_depth=1)) == ["d"]  # the entry's own depth wins
    assert contents(run(lore, HISTORY, scan_depth=0)) == []
    assert contents(run(lore, [])) == []


# --- order and positions ---------------------------------------------------------------------------


def test_activations_sorted_by_insertion_order_then_book_and_entry() -> None:
    first = book(entry(["x"], "late", insertion_order=50), entry(["x"], "early", insertion_order=1),
                 entry(["x"], "tie-a", insertion_order=10), name="a")  # fmt: skip
    second = book(entry(["x"], "tie-b", insertion_order=10), name="b")
    result = run([first, second], ["x"])
    assert contents(result) == ["early", "tie-a", "tie-b", "late"]
    assert [a.source for a in result.activations] == ["a#1", "a#2", "b#0", "a#0"]
    assert [a.order for a in result.activations] == [1, 10, 10, 50]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ("after_char", 4, "system")),
        ({"position": "before_char"}, ("before_char", 4, "system")),
        ({"position": "after_char"}, ("after_char", 4, "system")),
        ({"extensions": {"position": 0}}, ("before_char", 4, "system")),
        ({"extensions": {"position": 2}}, ("top_an", 4, "system")),
        ({"extensions": {"position": 3}}, ("bottom_an", 4, "system")),
        ({"extensions": {"position": 4, "depth": 2, "role": 1}}, ("at_depth", 2, "user")),
        ({"extensions": {"position": 4, "role": 2}}, ("at_depth", 4, "assistant")),
        ({"extensions": {"position": 5}}, ("before_examples", 4, "system")),
        ({"extensions": {"position": 6}}, ("after_examples", 4, "system")),
        ({"extensions": {"position": 7}}, ("after_char", 4, "system")),
        ({"position": "before_char", "extensions": {"position": 1}}, ("after_char", 4, "system")),
        ({"extensions": {"position": 4, "role": "assistant", "depth": -3}}, ("at_depth", 0, "assistant")),
    ],
)
def test_position_depth_role(fields: dict[str, Any], expected: tuple[str, int, str]) -> None:
    (hit,) = run(book(entry(["x"], "c", **fields)), ["x"]).activations
    assert (hit.position, hit.depth, hit.role) == expected


def test_bad_position_and_role_fall_back_with_warnings() -> None:
    lore = book(entry(["x"], "c", position="before_char", extensions={"position": "top", "role": 9}))
    result = run(lore, ["x"])
    assert result.activations == (Activation("c", "before_char", 4, "system", 100, "world#0"),)
    assert len(result.warnings) == 2


def test_decorators_set_placement_and_are_stripped() -> None:
    content = "@@depth 3\n@@role assistant\n@@unknown_thing 1\n\nThe real lore."
    (hit,) = run(book(entry(["x"], content)), ["x"]).activations
    assert (hit.content, hit.position, hit.depth, hit.role) == ("The real lore.", "at_depth", 3, "assistant")


def test_activate_and_dont_activate_decorators_and_fallbacks() -> None:
    lore = book(
        entry([], "@@activate\nforced"),
        entry(["x"], "@@dont_activate\nnever"),
        entry([], "@@risu_only 1\n@@@activate\nby fallback"),
        entry(["x"], "@@depth 1\n@@@depth 9\nfallback skipped"),
    )
    result = run(lore, ["x"])
    assert contents(result) == ["forced", "by fallback", "fallback skipped"]
    assert result.activations[2].depth == 1


# --- token budget -----------------------------------------------------------------------------------


def test_budget_drops_lowest_priority_first() -> None:
    lore = book(
        entry(["x"], "high priority three words", insertion_order=30),  # 4 tokens
        entry(["x"], "middle one two", insertion_order=20),  # 3 tokens
        entry(["x"], "low", insertion_order=10),  # 1 token: would fit, but SillyTavern stops at the first overflow
        token_budget=6,
    )
    result = run(lore, ["x"])
    assert contents(result) == ["high priority three words"]
    assert result.dropped == ("world#1", "world#2")


def test_budget_counts_constants_and_uses_priority_field() -> None:
    lore = book(
        entry([], "constant lore of four", constant=True, insertion_order=1),  # rank 1
        entry(["x"], "keyed but low", insertion_order=99, priority=0),  # rank 0
        entry(["x"], "keyed high", insertion_order=5, priority=50),  # rank 50
        token_budget=5,
    )
    result = run(lore, ["x"])
    assert contents(result) == ["keyed high"]
    assert result.dropped == ("world#0", "world#1")
    assert contents(run(lore, ["x"], token_budget=100)) == ["constant lore of four", "keyed high", "keyed but low"]


def test_entry_larger_than_whole_budget_is_skipped_not_truncated() -> None:
    huge = "word " * 500
    lore = book(entry(["x"], huge, insertion_order=90), entry(["x"], "small lore", insertion_order=10), token_budget=50)
    result = run(lore, ["x"])
    assert contents(result) == ["small lore"]
    assert any("world#0" in w and "500 tokens" in w for w in result.warnings)


def test_ignore_budget_entries_are_not_counted() -> None:
    lore = book(
        entry(["x"], "one two three", insertion_order=30),
        entry(["x"], "four five six", insertion_order=20),  # overflows: it and everything below are dropped...
        entry(["x"], "free text", insertion_order=10, extensions={"ignore_budget": True}),  # ...except this
        token_budget=4,
    )
    result = run(lore, ["x"])
    assert contents(result) == ["free text", "one two three"]
    assert result.dropped == ("world#1",)


def test_call_budget_is_shared_by_all_books_and_book_budgets_are_separate() -> None:
    a = book(entry(["x"], "one two three", insertion_order=20), token_budget=3, name="a")
    b = book(entry(["x"], "four five six", insertion_order=10), token_budget=3, name="b")
    assert len(run([a, b], ["x"]).activations) == 2
    assert contents(run([a, b], ["x"], token_budget=4)) == ["one two three"]


def test_non_positive_book_budget_is_ignored_with_warning() -> None:
    result = run(book(entry(["x"], "lore"), token_budget=0), ["x"])
    assert contents(result) == ["lore"]
    assert any("token_budget" in w for w in result.warnings)


# --- recursion ----------------------------------------------------------------------------------------


def chain(**fields: Any) -> Lorebook:
    return book(entry(["alpha"], "alpha mentions beta"), entry(["beta"], "beta mentions gamma"),
                entry(["gamma"], "gamma lore"), **fields)  # fmt: skip


def test_recursion_follows_activated_content() -> None:
    assert contents(run(chain(), ["alpha"])) == ["alpha mentions beta"]
    assert len(run(chain(recursive_scanning=True), ["alpha"]).activations) == 3
    assert len(run(chain(), ["alpha"], recursive=True).activations) == 3
    assert len(run(chain(recursive_scanning=True), ["alpha"], recursive=False).activations) == 1


def test_recursion_is_bounded_by_max_recursion() -> None:
    assert len(run(chain(recursive_scanning=True), ["alpha"], max_recursion=1).activations) == 2
    assert len(run(chain(recursive_scanning=True), ["alpha"], max_recursion=0).activations) == 1


def test_mutual_recursion_terminates() -> None:
    lore = book(entry(["ping"], "ping says pong"), entry(["pong"], "pong says ping"), recursive_scanning=True)
    assert contents(run(lore, ["ping"], max_recursion=1000)) == ["ping says pong", "pong says ping"]


def test_exclude_and_prevent_recursion() -> None:
    no_recursion = {"exclude_recursion": True}
    excluded = book(entry(["alpha"], "alpha mentions beta"), entry(["beta"], "beta", extensions=no_recursion),
                    recursive_scanning=True)  # fmt: skip
    assert contents(run(excluded, ["alpha"])) == ["alpha mentions beta"]
    assert len(run(excluded, ["alpha beta"]).activations) == 2  # the chat itself still activates it
    prevented = book(entry(["alpha"], "alpha mentions beta", extensions={"prevent_recursion": True}),
                     entry(["beta"], "beta"), recursive_scanning=True)  # fmt: skip
    assert contents(run(prevented, ["alpha"])) == ["alpha mentions beta"]


def test_delay_until_recursion() -> None:
    lore = book(entry(["alpha"], "alpha mentions beta"), entry(["beta"], "delayed beta",
                extensions={"delay_until_recursion": True}), recursive_scanning=True)  # fmt: skip
    assert contents(run(lore, ["beta"])) == []  # only the chat mentions beta: no recursive pass
    assert contents(run(lore, ["alpha"])) == ["alpha mentions beta", "delayed beta"]


def test_recursion_only_for_books_that_scan_recursively() -> None:
    feeder = book(entry(["alpha"], "alpha mentions beta"), name="feeder")
    flat = book(entry(["beta"], "beta lore"), name="flat")
    deep = book(entry(["beta"], "deep beta lore"), recursive_scanning=True, name="deep")
    assert contents(run([feeder, flat, deep], ["alpha"])) == ["alpha mentions beta", "deep beta lore"]


# --- probability, groups, delay ------------------------------------------------------------------


def test_probability_with_seeded_rng() -> None:
    lore = book(entry(["x"], "rare", extensions={"probability": 30, "useProbability": True}))
    expected = [random.Random(seed).random() * 100 < 30 for seed in range(40)]
    got = [bool(run(lore, ["x"], rng=random.Random(seed)).activations) for seed in range(40)]
    assert got == expected
    assert True in got and False in got


def test_probability_extremes_and_use_probability_off() -> None:
    never = book(entry(["x"], "never", extensions={"probability": 0}))
    always = book(entry(["x"], "always", extensions={"probability": 100}))
    off = book(entry(["x"], "off", extensions={"probability": 0, "useProbability": False}))
    rng = random.Random(1)
    assert [len(run(b, ["x"], rng=rng).activations) for b in (never, always, off)] == [0, 1, 1]


def test_inclusion_group_keeps_one_entry() -> None:
    lore = book(*(entry(["x"], f"variant {i}", extensions={"group": "weather"}) for i in range(3)),
                entry(["x"], "ungrouped"))  # fmt: skip
    seen = set()
    for seed in range(30):
        result = contents(run(lore, ["x"], rng=random.Random(seed)))
        assert len(result) == 2 and "ungrouped" in result
        seen.update(result)
    assert {"variant 0", "variant 1", "variant 2"} <= seen


def test_inclusion_group_override_and_weights() -> None:
    override = book(entry(["x"], "low", insertion_order=1, extensions={"group": "g", "group_override": True}),
                    entry(["x"], "high", insertion_order=9, extensions={"group": "g", "group_override": True}),
                    entry(["x"], "plain", insertion_order=50, extensions={"group": "g"}))  # fmt: skip
    assert contents(run(override, ["x"])) == ["high"]
    weighted = book(entry(["x"], "heavy", extensions={"group": "g", "group_weight": 100}),
                    entry(["x"], "zero", extensions={"group": "g", "group_weight": 0}))  # fmt: skip
    assert {tuple(contents(run(weighted, ["x"], rng=random.Random(s)))) for s in range(20)} == {("heavy",)}


def test_delay_waits_for_enough_messages() -> None:
    lore = book(entry(["x"], "late", extensions={"delay": 3}))
    assert contents(run(lore, ["x", "x"])) == []
    assert contents(run(lore, ["x", "x", "x"])) == ["late"]


# --- robustness and caching ---------------------------------------------------------------------------


def test_bad_extension_values_warn_instead_of_raising() -> None:
    ext = {"probability": "often", "depth": "deep", "scan_depth": [1], "selectiveLogic": "x", "case_sensitive": "yes",
           "group": 5, "group_weight": float("nan"), "delay_until_recursion": "later", "exclude_recursion": 2}
    result = run(book(entry(["x"], "sturdy", extensions=ext)), ["x"])
    assert contents(result) == ["sturdy"]
    assert len(result.warnings) >= 5


def test_compiled_book_and_lorebook_give_the_same_result() -> None:
    lore = chain(recursive_scanning=True)
    assert run(lore, ["alpha"]) == run([compile_book(lore)], ["alpha"])  # type: ignore[list-item]


def test_edits_to_a_book_are_seen_by_the_next_scan() -> None:
    lore = book(entry(["dragon"], "d"))
    assert contents(run(lore, ["a wyrm"])) == []
    lore.entries[0].keys.append("wyrm")
    assert contents(run(lore, ["a wyrm"])) == ["d"]


def test_books_that_are_not_plain_json_still_scan() -> None:
    lore = book(entry(["a\ud800"], "lone surrogate"), entry(["b"], "odd extension", extensions={"s": {1, 2}}))
    assert contents(run(lore, ["a\ud800 b"])) == ["lone surrogate", "odd extension"]


def test_source_names_book_and_entry_id() -> None:
    lore = Lorebook(entries=[entry(["x"], "a", id=42), entry(["x"], "b")])
    assert [a.source for a in run(lore, ["x"]).activations] == ["lorebook#42", "lorebook#1"]
