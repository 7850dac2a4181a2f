"""Schemathesis against the published OpenAPI spec of a real server: bounded, loopback, < 60 s.

Every operation gets a few generated requests (valid and invalid); responses must
match the spec (status codes, content types, schemas, headers), invalid input
must be refused with a 4xx, and nothing may crash. Two refusals are by design and
exempted where they apply: valid requests that name things generated data cannot
know (a session, message, sprite or persona id: 404), and the 400 for OpenAI
parameters we accept in shape but cannot honour (tools, audio output...) or files
that are empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from server_helpers import Server, make_key, start_server, stop_server

pytestmark = pytest.mark.slow
NAMED = {"/v1/audio/speech", "/v1/audio/transcriptions", "/v1/personas", "/v1/personas/{persona_id}",
       "/v1/lorebooks", "/v1/lorebooks/{book_id}", "/v1/characters/{char_id}/expressions/{label}",
       "/v1/sessions/{session_id}/state", "/v1/sessions/{session_id}/summary",
       "/v1/sessions/{session_id}/messages/{message_id}/audio", "/v1/sessions/{session_id}/lorebooks",
       "/v1/sessions/{session_id}/lorebooks/{attached_id}", "/detokenize", "/api/show",
       "/v1/scenes"}
REFUSED_IN_SHAPE = {"/v1/chat/completions", "/v1/audio/transcriptions", "/v1/characters",
                    "/v1/characters/{char_id}/export",
                    # suffix, images on raw prompts, Ollama's tools / template / context
                    "/v1/completions", "/api/v1/generate", "/api/extra/generate/stream", "/api/chat", "/api/generate",
                    # a turn needs words or a readable picture, and logit_bias keys must be token ids (JSON Schema's
                    # propertyNames, which the generator does not follow): every route that takes Sampling
                    "/v1/sessions/{session_id}/turns", "/v1/sessions/{session_id}/regenerate",
                    "/v1/sessions/{session_id}/edit", "/v1/scenes/{scene_id}/lines", "/v1/scenes/{scene_id}/speak",
                    "/v1/scenes/{scene_id}/events"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own, so generated deletes cannot touch the other tests' characters; its reply cap
    is the spec's maximum, so every max_tokens the spec allows is accepted."""
    home: Path = tmp_path_factory.mktemp("schema") / "home"
    home.mkdir(parents=True)
    key = make_key(home, "fuzzer")[1]
    running = start_server(home, ROLECRAFT_REQUIRE_API_KEY="true", ROLECRAFT_MAX_REPLY_TOKENS="32768",
                           ROLECRAFT_RATE_LIMIT_PER_MINUTE="0")
    running.keys = {"fuzzer": key}
    try:
        yield running
    finally:
        stop_server(running)


def _check_operation(operation: schemathesis.APIOperation, key: str) -> None:
    excluded = []
    if operation.path in REFUSED_IN_SHAPE | NAMED:
        excluded.append(positive_data_acceptance)

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(max_examples=20, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, excluded_checks=excluded, timeout=60)

    check()


def test_api_matches_its_spec(fuzzed: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            _check_operation(operation, fuzzed.keys["fuzzer"])
        except (Exception, ExceptionGroup) as exc:  # schemathesis reports a group of failures
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
