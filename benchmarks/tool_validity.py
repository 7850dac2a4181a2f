"""Tool-call validity on the bundled model for a 5-tool schema, with the grammar on and off.

Run: .venv/bin/python benchmarks/tool_validity.py [--requests 20] [--max-tokens 96] [--threads 2]

Each request is a user message that asks for one of five tools (weather, timer, message,
inventory lookup, walking somewhere). Both arms get the same prompt the chat endpoint builds
(`server/chat/tools.py`: the tools described in a system message) and decode greedily; the
"grammar on" arm adds the constraint the endpoint adds (`OutputPlan.overrides`: the call's JSON
schema compiled to GBNF by llama.cpp), the "off" arm decodes free. A reply is valid when
`read_calls` finds a call (it parses as {"name", "arguments"} with a known tool) and the arguments
validate against that tool's schema; it is right when it is also the tool the request asked for.
Printed per tool_choice ("required", "auto"): valid and right shares with a 95% bootstrap
interval for each arm and for their paired difference, from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

from _common import temp_settings

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "The weather forecast for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"]}}},
    {"type": "function", "function": {
        "name": "set_timer", "description": "Start a countdown timer.",
        "parameters": {"type": "object", "properties": {"minutes": {"type": "integer", "minimum": 1,
                                                                     "maximum": 600}},
                       "required": ["minutes"]}}},
    {"type": "function", "function": {
        "name": "send_message", "description": "Send a short message to a person.",
        "parameters": {"type": "object", "properties": {"to": {"type": "string"}, "text": {"type": "string"}},
                       "required": ["to", "text"]}}},
    {"type": "function", "function": {
        "name": "lookup_item", "description": "Look up an item in the player's inventory.",
        "parameters": {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]}}},
    {"type": "function", "function": {
        "name": "walk_to", "description": "Walk the character to a place in the village.",
        "parameters": {"type": "object", "properties": {
            "place": {"type": "string", "enum": ["forge", "tavern", "gate", "market", "well"]}},
            "required": ["place"]}}},
]
REQUESTS = [
    ("get_weather", "What's the weather like in Lisbon? Use celsius."),
    ("get_weather", "Will it rain in Chicago tomorrow? I think in fahrenheit."),
    ("get_weather", "Tell me the forecast for Osaka."),
    ("get_weather", "How cold is it in Oslo right now, in celsius?"),
    ("set_timer", "Set a timer for 10 minutes."),
    ("set_timer", "Remind me in 25 minutes that the bread is done."),
    ("set_timer", "Start a three minute countdown for the tea."),
    ("set_timer", "I need a 45 minute timer."),
    ("send_message", "Tell Mara that dinner is ready."),
    ("send_message", "Send a message to Jonas saying I will be late."),
    ("send_message", "Message the smith: the sword is finished."),
    ("send_message", "Let Aunt Rose know we arrived safely."),
    ("lookup_item", "Do I still have the iron key?"),
    ("lookup_item", "How many healing potions are in my bag?"),
    ("lookup_item", "Check my inventory for a rope."),
    ("lookup_item", "Is the silver ring in my pack?"),
    ("walk_to", "Go to the forge."),
    ("walk_to", "Walk over to the tavern, please."),
    ("walk_to", "Head to the village gate."),
    ("walk_to", "Let's go to the market."),
]


def judge(plan: object, text: str, wanted: str) -> tuple[bool, bool]:
    """(valid, right): the reply is a well-formed call whose arguments fit its tool; and it is `wanted`."""
    from jsonschema import Draft202012Validator

    calls = plan.read_calls(text)  # type: ignore[attr-defined]
    if not calls:
        return False, False
    name = calls[0]["function"]["name"]
    schema = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)
    valid = not list(Draft202012Validator(schema).iter_errors(json.loads(calls[0]["function"]["arguments"])))
    return valid, valid and name == wanted


def run_arm(backend: object, plan: object, requests: list[tuple[str, str]], grammar: bool,
            max_tokens: int) -> list[tuple[bool, bool]]:
    from rolecraft.backends.base import SamplingParams
    from rolecraft.messages import Message

    overrides = plan.overrides(True) if grammar else {}  # type: ignore[attr-defined]
    out = []
    for wanted, request in requests:
        messages = [Message("system", plan.instructions()), Message("user", request)]  # type: ignore[attr-defined]
        params = SamplingParams(max_tokens=max_tokens, temperature=0.0, **overrides)
        text = "".join(e.text for e in backend.stream(messages, params) if e.text)  # type: ignore[attr-defined]
        out.append(judge(plan, text, wanted))
    return out


def share(flags: list[bool]) -> float:
    return 100.0 * sum(flags) / len(flags)


def interval(on: list[bool], off: list[bool] | None = None, reps: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of the share of `on` (or of the paired difference on − off)."""
    rng, n, stats = random.Random(0), len(on), []
    for _ in range(reps):
        pick = [rng.randrange(n) for _ in range(n)]
        value = sum(on[i] for i in pick) - (sum(off[i] for i in pick) if off is not None else 0)
        stats.append(100.0 * value / n)
    stats.sort()
    return stats[int(0.025 * reps)], stats[int(0.975 * reps) - 1]


def report(choice: str, on: list[tuple[bool, bool]], off: list[tuple[bool, bool]]) -> None:
    for k, label in ((0, "valid"), (1, "right tool")):
        a, b = [r[k] for r in on], [r[k] for r in off]
        lo, hi = interval(a)
        lo_off, hi_off = interval(b)
        dlo, dhi = interval(a, b)
        print(f"  {choice:<8} {label:<10}  grammar on {share(a):5.1f}% [{lo:.0f}, {hi:.0f}]   "
              f"off {share(b):5.1f}% [{lo_off:.0f}, {hi_off:.0f}]   difference {share(a) - share(b):+5.1f} "
              f"[{dlo:+.0f}, {dhi:+.0f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=len(REQUESTS))
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from rolecraft.backends.registry import create_backend
    from rolecraft.server.chat.tools import plan_output

    backend = create_backend(temp_settings(n_threads=args.threads))
    requests = REQUESTS[: args.requests]
    print(f"tool-call validity, bundled model, {len(requests)} requests x 5 tools, greedy, "
          f"max_tokens {args.max_tokens}, load {os.getloadavg()[0]:.1f}")
    started = time.monotonic()
    for choice in ("required", "auto"):
        plan = plan_output(TOOLS, choice, None)
        on = run_arm(backend, plan, requests, True, args.max_tokens)
        off = run_arm(backend, plan, requests, False, args.max_tokens)
        report(choice, on, off)
    print(f"({time.monotonic() - started:.0f} s; load {os.getloadavg()[0]:.1f} at the end)")
    backend.close()


if __name__ == "__main__":
    main()
