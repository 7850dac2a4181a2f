"""Backend for any OpenAI-compatible server (vLLM, llama-server, llama-cpp-python's server, Ollama).

It exists so rolecraft scales past the bundled CPU model: point `base_url` at a GPU server and
the same turn pipeline streams from it through the official `openai` SDK.

The OpenAI API has no way to express a character's role constraints, so this module
adds them around it:
- stop strings: the first four go to the server (the API's limit); all are enforced here;
- banned phrases: enforced here by `PhraseGuard`, which holds back text that could begin one;
- boost phrases: turned into `logit_bias` token ids when the server exposes its tokenizer
  (vLLM and llama-server `POST /tokenize`, llama-cpp-python `POST /extras/tokenize`);
- top_k, repeat_penalty, min_p and, when on, typical_p, tfs_z, mirostat, DRY, XTC and a GBNF grammar:
  sent in `extra_body` under llama-server's names (vLLM reads top_k, min_p, repetition_penalty), which
  strict servers may reject (then the request is retried once without the extras, and the server is
  remembered as plain); frequency/presence penalty and token-id logit_bias are OpenAI fields.
A character's LoRA adapter is asked for by name as the request's model, the way vLLM serves
`--lora-modules NAME=PATH` (and `rolecraft serve` its <home>/adapters).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from rolecraft.backends.base import Backend, Capabilities, SamplingParams, StreamEvent
from rolecraft.backends.models import adapter_name
from rolecraft.backends.registry import register
from rolecraft.backends.sharing import released, waiting
from rolecraft.errors import RolecraftError, missing_extra
from rolecraft.messages import Message, raw_prompt
from rolecraft.settings import Settings

MAX_SERVER_STOPS = 4  # the OpenAI API accepts at most four stop strings
CHARS_PER_TOKEN = 3.5  # estimate used when the server cannot count tokens
TOKENS_PER_MESSAGE = 4  # role markers around each message, for the estimate
MARKERS_PER_MESSAGE = 2  # ChatML's <|im_start|> and <|im_end|>; the reply opens with one more
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 300.0  # a long prompt on a CPU server can take minutes to prefill
MAX_BIAS = 100.0  # the API's logit_bias range is [-100, 100]
MAX_ERROR_CHARS = 500  # servers may put a whole traceback in their error message


def _openai() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise missing_extra("openai", "openai") from exc
    return openai


def to_wire(message: Message) -> dict[str, Any]:
    """One message as the chat completions API takes it (pictures as image_url parts)."""
    return message.wire()


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Token count guess for servers that do not expose their tokenizer."""
    return sum(math.ceil(len(m.content) / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE for m in messages)


# ---------------------------------------------------------------------------- phrase guard


def _is_word_char(char: str) -> bool:
    return bool(re.match(r"\w", char))


def _banned_pattern(phrase: str, *, final: bool) -> str:
    """Case-insensitive, whole-word match; mid-stream a trailing word needs a visible non-word after it."""
    start = r"(?<!\w)" if _is_word_char(phrase[0]) else ""
    end = (r"(?!\w)" if final else r"(?=\W)") if _is_word_char(phrase[-1]) else ""
    return f"(?i:{start}{re.escape(phrase)}{end})"


def _phrase_regex(stops: list[str], banned: list[str], *, final: bool) -> re.Pattern[str] | None:
    parts = [re.escape(s) for s in stops] + [_banned_pattern(b, final=final) for b in banned]
    return re.compile("|".join(parts)) if parts else None


class PhraseGuard:
    """Cuts streamed text before the first stop string or banned phrase.

    Text that could be the beginning of one is held back until the next piece decides it.
    Stop strings match exactly; banned phrases ignore case and match whole words only
    ("AI" is banned in "as an AI," but not in "said").
    """

    def __init__(self, stops: Sequence[str] = (), banned: Sequence[str] = ()) -> None:
        self._stops = [s for s in stops if s]
        self._banned = [b.strip().lower() for b in banned if b.strip()]
        self._streaming = _phrase_regex(self._stops, self._banned, final=False)
        self._final = _phrase_regex(self._stops, self._banned, final=True)
        self._longest = max(map(len, self._stops + self._banned), default=0)
        self._pending = ""
        self._before = ""  # the last character released, for the whole-word check
        self.done = False
        self.tripped = False  # True once a phrase cut the text

    def feed(self, text: str) -> str:
        """Take the next streamed piece; return the text that is safe to show now."""
        if self.done:
            return ""
        self._pending += text
        cut = self._find(self._streaming)
        if cut is not None:
            return self._finish(cut, tripped=True)
        return self._release(len(self._pending) - self._held_back())

    def flush(self) -> str:
        """At the end of the stream: release what was held back, cut before any phrase it completes."""
        if self.done:
            return ""
        cut = self._find(self._final)
        return self._finish(len(self._pending) if cut is None else cut, tripped=cut is not None)

    def _find(self, pattern: re.Pattern[str] | None) -> int | None:
        if pattern is None:
            return None
        match = pattern.search(self._before + self._pending, len(self._before))
        return None if match is None else match.start() - len(self._before)

    def _held_back(self) -> int:
        for size in range(min(self._longest, len(self._pending)), 0, -1):
            tail = self._pending[-size:]
            lowered = tail.lower()
            if any(s.startswith(tail) for s in self._stops) or any(b.startswith(lowered) for b in self._banned):
                return size
        return 0

    def _release(self, size: int) -> str:
        out, self._pending = self._pending[:size], self._pending[size:]
        if out:
            self._before = out[-1]
        return out

    def _finish(self, size: int, *, tripped: bool) -> str:
        out = self._pending[:size]
        self._pending, self.done, self.tripped = "", True, tripped
        return out


# ---------------------------------------------------------------------------- server tokenizers


class _Post(Protocol):
    def __call__(self, url: str, body: dict[str, Any]) -> dict[str, Any]: ...


class ServerTokenizer(Protocol):
    """A server's tokenizer endpoint. `exact` is True when counts include the server's chat template."""

    exact: bool

    def ids(self, text: str) -> list[int]: ...

    def count(self, messages: list[dict[str, Any]]) -> int: ...


@dataclass
class _VllmTokenizer:
    post: _Post
    root: str
    model: str
    exact: bool = True

    def ids(self, text: str) -> list[int]:
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        return list(self.post(f"{self.root}/tokenize", body)["tokens"])

    def count(self, messages: list[dict[str, Any]]) -> int:
        body = {"model": self.model, "messages": messages, "add_generation_prompt": True}
        return int(self.post(f"{self.root}/tokenize", body)["count"])


@dataclass
class _LlamaServerTokenizer:
    post: _Post
    root: str
    exact: bool = True

    def ids(self, text: str) -> list[int]:
        return list(self.post(f"{self.root}/tokenize", {"content": text, "add_special": False})["tokens"])

    def count(self, messages: list[dict[str, Any]]) -> int:
        prompt = self.post(f"{self.root}/apply-template", {"messages": messages})["prompt"]
        body = {"content": prompt, "add_special": True, "parse_special": True}
        return len(self.post(f"{self.root}/tokenize", body)["tokens"])


@dataclass
class _LlamaCppPythonTokenizer:
    """llama-cpp-python's server tokenizes text but cannot render its chat template: counts add an estimate."""

    post: _Post
    root: str
    model: str
    exact: bool = False

    def _tokens(self, text: str) -> list[int]:
        return list(self.post(f"{self.root}/extras/tokenize", {"model": self.model, "input": text})["tokens"])

    @cached_property
    def _prefix(self) -> int:
        return len(self._tokens(""))  # the BOS token, for models that add one

    def ids(self, text: str) -> list[int]:
        return self._tokens(text)[self._prefix :]

    def count(self, messages: list[dict[str, Any]]) -> int:
        """Roles and contents tokenized exactly, plus the special tokens a ChatML-style template adds."""
        text = "".join(f"{m['role']}\n{m['content']}\n" for m in messages) + "assistant\n"
        return len(self._tokens(text)) - self._prefix + MARKERS_PER_MESSAGE * len(messages) + 1


def _detect_tokenizer(candidates: Sequence[ServerTokenizer], rejected: tuple[type, ...]) -> ServerTokenizer | None:
    """The first tokenizer dialect the server answers; the others get a 404, a 400 or an empty answer."""
    for tokenizer in candidates:
        try:
            if tokenizer.ids("Hello"):
                return tokenizer
        except (*rejected, KeyError, TypeError):
            continue
    return None


# ---------------------------------------------------------------------------- errors


def _server_message(exc: Any) -> str:
    """The server's own words from an error body ({"error": {"message"}}, FastAPI's {"detail"}, ...)."""
    body, found = exc.body, None
    if isinstance(body, dict):
        inner = body.get("error", body)
        found = (inner.get("message") or inner.get("detail")) if isinstance(inner, dict) else inner
    text = str(found or exc.message)
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"


@contextmanager
def server_errors(base_url: str) -> Iterator[None]:
    """Turn the SDK's connection and HTTP errors into RolecraftError naming the server."""
    openai = _openai()
    try:
        yield
    except openai.APIConnectionError as exc:  # includes APITimeoutError
        reason = exc.__cause__ or exc.message
        raise RolecraftError(
            f"cannot reach the OpenAI-compatible server at {base_url}: {reason}",
            code="backend_unavailable",
            status=502,
            type="server_error",
        ) from exc
    except openai.APIStatusError as exc:
        raise RolecraftError(
            f"the server at {base_url} answered {exc.status_code}: {_server_message(exc)}",
            code="backend_error",
            status=502,
            type="server_error",
        ) from exc
    except openai.APIError as exc:  # an error event inside the stream
        raise RolecraftError(
            f"the server at {base_url} failed: {_server_message(exc)}",
            code="backend_error",
            status=502,
            type="server_error",
        ) from exc


# ---------------------------------------------------------------------------- the backend


@dataclass(frozen=True)
class ServerInfo:
    """What the server told us about itself, asked once."""

    model: str
    context_size: int | None
    tokenizer: ServerTokenizer | None


def _choose_model(requested: str, entries: list[dict[str, Any]], base_url: str) -> dict[str, Any]:
    """The /models entry to use: the requested one, else the only one (single-model servers)."""
    for entry in entries:
        if entry.get("id") == requested:
            return entry
    if len(entries) == 1:
        return entries[0]
    if not entries:
        return {"id": requested}
    served = ", ".join(str(e.get("id")) for e in entries)
    raise RolecraftError(
        f"model {requested!r} is not served at {base_url}; it serves: {served}",
        code="model_not_found",
        param="model",
        status=404,
    )


@register("openai_compat")
class OpenAICompatBackend(Backend):
    """Streams chat completions from an OpenAI-compatible server at `settings.base_url`."""

    name = "openai_compat"

    def __init__(self, settings: Settings) -> None:
        openai = _openai()
        self._settings = settings
        self._base_url = settings.base_url.rstrip("/")
        self._root = self._base_url.removesuffix("/v1")
        self._client = openai.OpenAI(
            base_url=self._base_url,
            api_key=settings.api_key or "none",
            timeout=openai.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            max_retries=1,
        )
        self._plain = False  # True once the server rejected stream_options/extra_body
        self._phrase_ids: dict[str, list[int]] = {}

    @cached_property
    def _info(self) -> ServerInfo:
        openai = _openai()
        with server_errors(self._base_url):
            try:
                entries = self._client.get("/models", cast_to=dict).get("data") or []
            except openai.NotFoundError:
                entries = []
            entry = _choose_model(self._settings.model, entries, self._base_url)
            tokenizer = _detect_tokenizer(self._tokenizers(entry["id"]), rejected=(openai.APIStatusError,))
        context = entry.get("max_model_len")
        context_size = context if isinstance(context, int) else None
        return ServerInfo(model=entry["id"], context_size=context_size, tokenizer=tokenizer)

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._client.post(url, body=body, cast_to=dict)

    def _tokenizers(self, model: str) -> list[ServerTokenizer]:
        """Tokenizer dialects in the order they are tried: vLLM, llama-server, llama-cpp-python."""
        return [
            _VllmTokenizer(self._post, self._root, model),
            _LlamaServerTokenizer(self._post, self._root),
            _LlamaCppPythonTokenizer(self._post, self._root, model),
        ]

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        tokenizer = self._info.tokenizer
        exact = bool(tokenizer and tokenizer.exact)
        return Capabilities(images=self._settings.vision, logit_bias=tokenizer is not None, exact_tokenizer=exact)

    @property
    def context_size(self) -> int:
        return self._info.context_size or self._settings.n_ctx

    def count_tokens(self, messages: Sequence[Message]) -> int:
        tokenizer = self._info.tokenizer
        if tokenizer is None:
            return estimate_tokens(messages)
        with server_errors(self._base_url):
            return tokenizer.count([to_wire(m) for m in messages])

    def stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[StreamEvent]:
        guard = PhraseGuard(params.stop, params.banned_phrases)
        with server_errors(self._base_url):
            request = self._request(messages, params)
            with waiting():  # a remote engine batches concurrent requests itself: let the other jobs send theirs
                opened = self._open(request, _extra_body(params))
            with opened as chunks:
                yield from self._relay(chunks, guard, messages)

    def close(self) -> None:
        self._client.close()

    def _request(self, messages: Sequence[Message], params: SamplingParams) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": adapter_name(params.adapter) if params.adapter else self._info.model,
            "messages": [to_wire(m) for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
        }
        raw = raw_prompt(messages)
        if raw is not None:  # a text-completion prompt goes to the server's /v1/completions as is
            del request["messages"]
            request["prompt"] = raw
        if params.seed is not None:
            request["seed"] = params.seed
        stops = [s for s in params.stop if s][:MAX_SERVER_STOPS]
        if stops:
            request["stop"] = stops
        for name in ("frequency_penalty", "presence_penalty"):
            if getattr(params, name):
                request[name] = getattr(params, name)
        bias = {**self._logit_bias(params), **{str(t): max(-MAX_BIAS, min(MAX_BIAS, b))
                                               for t, b in params.logit_bias.items()}}
        if bias:
            request["logit_bias"] = bias
        if params.json_schema is not None:
            schema = {"name": "state", "schema": params.json_schema}
            request["response_format"] = {"type": "json_schema", "json_schema": schema}
        return request

    def _open(self, request: dict[str, Any], extra_body: dict[str, Any]) -> Any:
        """Start the streamed completion, asking for usage and sending extras unless the server rejects them."""
        openai = _openai()
        create = self._client.completions.create if "prompt" in request else self._client.chat.completions.create
        if self._plain:
            return create(**request)
        try:
            return create(**request, stream_options={"include_usage": True}, extra_body=extra_body)
        except (openai.BadRequestError, openai.UnprocessableEntityError):
            chunks = create(**request)  # raises the server's own error if the extras were not the problem
            self._plain = True
            return chunks

    def _relay(self, chunks: Any, guard: PhraseGuard, messages: Sequence[Message]) -> Iterator[StreamEvent]:
        """Pass text through the guard; end with one event carrying finish_reason and usage."""
        finish, usage, pieces = None, None, 0
        for chunk in released(chunks):
            usage = chunk.usage or usage
            for choice in chunk.choices[:1]:
                content = _choice_text(choice)
                pieces += bool(content)
                text = guard.feed(content)
                if text:
                    yield StreamEvent(text=text)
                finish = choice.finish_reason or finish
            if guard.done:
                chunks.close()  # stop the server generating text nobody will see
                break
        tail = guard.flush()
        if tail:
            yield StreamEvent(text=tail)
        if usage is None:
            prompt_tokens, completion_tokens = self.count_tokens(messages), pieces
        else:
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        reason = "stop" if guard.tripped else finish or "stop"
        yield StreamEvent(finish_reason=reason, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def _logit_bias(self, params: SamplingParams) -> dict[str, float]:
        """Bias every token of each boost phrase (with and without a leading space); {} without a tokenizer."""
        tokenizer = self._info.tokenizer
        if not params.boost_phrases or not params.boost_strength or tokenizer is None:
            return {}
        strength = max(-MAX_BIAS, min(MAX_BIAS, params.boost_strength))
        phrases = {p.strip() for p in params.boost_phrases if p.strip()}
        variants = phrases | {" " + p for p in phrases}
        return {str(token): strength for variant in sorted(variants) for token in self._ids(tokenizer, variant)}

    def _ids(self, tokenizer: ServerTokenizer, text: str) -> list[int]:
        """Token ids of `text` from the server, cached; [] if the server refuses (boosting is best effort)."""
        if text not in self._phrase_ids:
            try:
                self._phrase_ids[text] = tokenizer.ids(text)
            except _openai().APIStatusError:
                self._phrase_ids[text] = []
        return self._phrase_ids[text]


def _choice_text(choice: Any) -> str:
    """The new text of a streamed choice: a chat chunk's delta, or a text completion's text."""
    delta = getattr(choice, "delta", None)
    return (delta.content if delta is not None else choice.text) or ""


_NEUTRAL_EXTRAS = {"typical_p": 1.0, "tfs_z": 1.0, "mirostat": 0, "dry_multiplier": 0.0, "xtc_probability": 0.0}


def _extra_body(params: SamplingParams) -> dict[str, Any]:
    """Sampling fields outside the OpenAI schema, under the names vLLM and llama.cpp servers read
    (samplers left at their neutral value are not sent, so servers that lack them are not bothered)."""
    extra: dict[str, Any] = {"top_k": params.top_k, "repeat_penalty": params.repeat_penalty,
                             "repetition_penalty": params.repeat_penalty, "min_p": params.min_p}
    optional = {"typical_p": params.typical_p, "tfs_z": params.tfs_z, "mirostat": params.mirostat_mode,
                "dry_multiplier": params.dry_multiplier, "xtc_probability": params.xtc_probability}
    extra |= {k: v for k, v in optional.items() if v != _NEUTRAL_EXTRAS[k]}
    if params.mirostat_mode:
        extra |= {"mirostat_tau": params.mirostat_tau, "mirostat_eta": params.mirostat_eta}
    if params.dry_multiplier:
        extra |= {"dry_base": params.dry_base, "dry_allowed_length": params.dry_allowed_length,
                  "dry_penalty_last_n": params.dry_penalty_last_n,
                  "dry_sequence_breakers": list(params.dry_sequence_breakers)}
    if params.xtc_probability:
        extra["xtc_threshold"] = params.xtc_threshold
    if params.grammar is not None:
        extra["grammar"] = params.grammar  # llama-server's GBNF field
    return extra
