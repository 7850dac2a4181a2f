"""Function calling and structured output for chat completions, as OpenAI defines them.

`plan_output` reads `tools` + `tool_choice` and `response_format` once and says how the
reply must be made: the instructions the model reads (tools described in a system
message: small local models have no tool-calling template), the constraint that makes
the output valid (a JSON schema every backend can pass on: llama.cpp compiles it to a
grammar, OpenAI-compatible servers get it as response_format; for tool_choice "auto" on
a grammar backend, a GBNF that is either a valid call or plain text not opening with
"{"), and how to read the finished text back into `tool_calls`. The NPC actions of a
game reuse this: an action is a tool.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from rolecraft.errors import RolecraftError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ROOT_RULE = re.compile(r"^root ::=", re.MULTILINE)
# After the schema's grammar (renamed `call`): or any text that does not open like a JSON object.
_AUTO_RULES = '\nroot ::= call | text\ntext ::= [^{ \\t\\n] [^\\x00]*\n'
EMPTY_OBJECT = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class OutputPlan:
    """How one request's reply must look: free text, JSON (response_format) or tool calls."""

    tools: list[Tool] = field(default_factory=list)
    choice: str = "none"  # none | auto | required (a named tool: required with one tool)
    json_schema: dict[str, Any] | None = None  # the output's schema (tool call or response_format)
    json_output: bool = False  # response_format json_object / json_schema: the content is JSON

    @property
    def calls_tools(self) -> bool:
        return self.choice in ("auto", "required") and bool(self.tools)

    def instructions(self) -> str | None:
        """The system text that tells the model about its tools (None without tools)."""
        if not self.calls_tools:
            return None
        lines = ["You can call these functions:"]
        for tool in self.tools:
            lines.append(f"- {tool.name}: {tool.description or 'no description'}; arguments (JSON schema): "
                         f"{json.dumps(tool.parameters, separators=(',', ':'))}")
        lines.append('To call one, reply with only a JSON object: {"name": "<function>", "arguments": {...}}.')
        if self.choice == "required":
            lines.append("You must call " + (f"{self.tools[0].name}." if len(self.tools) == 1 else "one of them."))
        else:
            lines.append("If no function is needed, answer in plain words.")
        return "\n".join(lines)

    def overrides(self, grammar_backend: bool) -> dict[str, Any]:
        """SamplingParams fields that enforce this plan on the backend."""
        if self.json_schema is None:
            return {}
        if self.choice == "auto" and self.calls_tools:
            return {"grammar": auto_grammar(self.json_schema)} if grammar_backend else {}
        return {"json_schema": self.json_schema}

    def read_calls(self, text: str) -> list[dict[str, Any]] | None:
        """The tool calls in a finished reply, in OpenAI's shape; None when the reply is plain text."""
        if not self.calls_tools or not text.lstrip().startswith("{"):
            return None
        try:
            call = json.loads(text)
        except ValueError:
            return None
        names = {t.name for t in self.tools}
        if not isinstance(call, dict) or call.get("name") not in names or not isinstance(call.get("arguments"), dict):
            return None
        return [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                 "function": {"name": call["name"], "arguments": json.dumps(call["arguments"], ensure_ascii=False)}}]


def _tool(index: int, entry: Any) -> Tool:
    param = f"tools[{index}]"
    function = entry.get("function") if isinstance(entry, dict) and entry.get("type") == "function" else None
    if not isinstance(function, dict):
        raise RolecraftError(f"{param} must be {{'type': 'function', 'function': {{'name': ...}}}}",
                             code="invalid_value", param=param)
    name = function.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RolecraftError(f"{param}.function.name must be 1-64 letters, digits, '_' or '-'",
                             code="invalid_value", param=f"{param}.function.name")
    parameters = function.get("parameters", EMPTY_OBJECT)
    _check_schema(parameters, name, f"{param}.function.parameters")
    return Tool(name, str(function.get("description") or ""), parameters)


def _check_schema(schema: Any, owner: str, param: str) -> None:
    from jsonschema import Draft202012Validator, SchemaError

    if not isinstance(schema, dict):
        raise RolecraftError(f"the schema of {owner!r} must be a JSON object", code="invalid_schema", param=param)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise RolecraftError(f"the schema of {owner!r} is not a valid JSON schema: {exc.message}",
                             code="invalid_schema", param=param) from None


def _choice(tool_choice: Any, tools: list[Tool]) -> tuple[str, list[Tool]]:
    if tool_choice is None:
        return ("auto" if tools else "none"), tools
    if tool_choice in ("none", "auto", "required"):
        return tool_choice, tools
    name = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    chosen = [t for t in tools if t.name == name]
    if not chosen:
        raise RolecraftError(f"tool_choice names {name!r}, which is not among the tools", code="invalid_value",
                             param="tool_choice")
    return "required", chosen


def _call_schema(tools: list[Tool]) -> dict[str, Any]:
    calls = [{"type": "object", "properties": {"name": {"const": t.name}, "arguments": t.parameters},
              "required": ["name", "arguments"]} for t in tools]
    return calls[0] if len(calls) == 1 else {"anyOf": calls}


def _response_format(value: dict[str, Any] | None) -> dict[str, Any] | None:
    kind = (value or {}).get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = value.get("json_schema") if value else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        _check_schema(schema, (spec or {}).get("name", "response_format"), "response_format.json_schema.schema")
        return schema
    raise RolecraftError(f"response_format type {kind!r} is not one of text, json_object, json_schema",
                         code="invalid_value", param="response_format.type")


def plan_output(tools: list[Any] | None, tool_choice: Any, response_format: dict[str, Any] | None) -> OutputPlan:
    """Validate the request's tools and response_format (400 naming the bad one) and plan the output."""
    read = [_tool(i, entry) for i, entry in enumerate(tools or [])]
    choice, chosen = _choice(tool_choice, read)
    if choice == "required" and not chosen:
        raise RolecraftError("tool_choice 'required' needs tools", code="invalid_value", param="tool_choice")
    schema = _response_format(response_format)
    plan = OutputPlan(tools=chosen if choice != "none" else [], choice=choice)
    if plan.calls_tools:
        plan.json_schema = _call_schema(plan.tools)
    elif schema is not None:
        plan.json_schema, plan.json_output = schema, True
    return plan


def auto_grammar(call_schema: dict[str, Any]) -> str:
    """GBNF for tool_choice "auto": a valid call of one of the tools, or text that does not open with "{"."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return _ROOT_RULE.sub("call ::=", json_schema_to_gbnf(json.dumps(call_schema))) + _AUTO_RULES


class CallBuffer:
    """Streams a reply that may be a tool call: text is held while it may still be a call's JSON
    (for "required", always), and shown as soon as it clearly is plain words."""

    def __init__(self, plan: OutputPlan) -> None:
        self.plan = plan
        self.held = ""
        self.plain = not plan.calls_tools

    def feed(self, piece: str) -> str:
        """The text to show now."""
        if self.plain:
            return piece
        self.held += piece
        head = self.held.lstrip()
        if self.plan.choice == "auto" and head and not head.startswith("{"):
            self.plain, shown, self.held = True, self.held, ""
            return shown
        return ""

    def finish(self, text: str) -> tuple[list[dict[str, Any]] | None, str]:
        """The reply's tool calls (or None) and the held text still to show."""
        if self.plain:
            return None, ""
        calls = self.plan.read_calls(text)
        shown = "" if calls is not None or self.plan.choice == "required" else self.held
        return calls, shown


def check_grammars(plan: OutputPlan) -> None:
    """Compile each tool's schema to a grammar now, so a schema llama.cpp cannot follow is a 400 naming
    its tool rather than a failure mid-stream."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    for tool in plan.tools if plan.calls_tools else []:
        try:
            json_schema_to_gbnf(json.dumps(tool.parameters))
        except (ValueError, KeyError, TypeError, NotImplementedError, AssertionError, RecursionError) as exc:
            raise RolecraftError(f"the schema of {tool.name!r} cannot be turned into a grammar: {exc}",
                                 code="invalid_schema", param="tools") from None
