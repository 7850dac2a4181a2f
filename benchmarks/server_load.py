"""Bounded loopback load on a real `rolecraft serve`, and the server's overhead over the in-process engine.

Run: .venv/bin/python benchmarks/server_load.py [--seconds 60] [--clients 1,4,8] [--max-tokens 16] [--threads 2]
    [--batch-streams 8]

Load: on a server serving one request at a time (batch_streams=1), then on one decoding up to
--batch-streams together, for each N, N concurrent clients (each with its own stored session with Ember) send streamed
chat-completion turns back to back for --seconds, against the bundled model on 127.0.0.1. Reported:
completed turns, p50/p95 time to first token (TTFT) as a client sees it, errors (target 0), and lost
turns (target 0): the turns each session holds in the database, counted against the turns the server
acknowledged (a completed stream with its stored message ids). Then the batched server's figures
against the one-at-a-time server's, per N.
Overhead: the same sequence of turns, once through `Engine` in this process and once through the
server with one client, greedy so both generate the same text: ratio of p50 TTFT and of tokens/s.
The script stops by itself: every phase is bounded by --seconds, every request by a timeout, and
the server it started is terminated at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from _common import median, percentile

from rolecraft.conversation import Engine
from rolecraft.messages import Message
from rolecraft.settings import Settings
from rolecraft.store import Store

EXE = Path(sys.executable).with_name("rolecraft")
PROMPTS = ["Good evening! What is this place?", "What are you working on at the forge today?",
           "Tell me about the strangest blade you ever made.", "Who taught you the craft?"]


@dataclass
class Turn:
    ttft: float
    tokens: int
    decode_s: float


@dataclass
class Client:
    session_id: str
    turns: list[Turn] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen([str(EXE), "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx2.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx2.HTTPError:
            time.sleep(0.3)
    process.kill()
    sys.exit(f"rolecraft serve did not start; see {home / 'serve.log'}")


def streamed_turn(http: httpx2.Client, session_id: str, text: str) -> Turn:
    """One streamed session turn; raises unless the server acknowledged it as stored."""
    body = {"model": "ember", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": text}]}
    start, first, tokens, stored = time.perf_counter(), None, 0, False
    with http.stream("POST", "/v1/chat/completions", json=body, headers={"X-Rolecraft-Session": session_id}) as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"HTTP {answer.status_code}: {answer.read()[:200]!r}")
        for line in answer.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(chunk["error"]["message"])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content") and first is None:
                first = time.perf_counter()
            stored = stored or bool(chunk.get("rolecraft", {}).get("message_ids"))
            tokens = chunk["usage"]["completion_tokens"] if chunk.get("usage") else tokens
    if not stored:
        raise RuntimeError("stream ended without the stored turn")
    done = time.perf_counter()
    first = first or done
    return Turn(first - start, tokens, done - first)


def run_client(url: str, client: Client, until: float) -> None:
    with httpx2.Client(base_url=url, timeout=300) as http:
        i = 0
        while time.monotonic() < until:
            try:
                client.turns.append(streamed_turn(http, client.session_id, PROMPTS[i % len(PROMPTS)]))
            except (httpx2.HTTPError, RuntimeError) as exc:
                client.errors.append(str(exc))
            i += 1


def new_session(url: str) -> str:
    answer = httpx2.post(f"{url}/v1/sessions", json={"character": "ember"}, timeout=60)
    answer.raise_for_status()
    return answer.json()["id"]


def stored_turns(db_url: str, session_id: str) -> int:
    store = Store(db_url)
    try:
        return sum(1 for m in store.all_messages(session_id) if m.role == "user")
    finally:
        store.close()


@dataclass
class Load:
    clients: int
    turns: int
    tok_s: float
    ttft_p50: float
    ttft_p95: float
    errors: int
    lost: int


def load_phase(url: str, db_url: str, clients: int, seconds: float, label: str) -> Load:
    group = [Client(new_session(url)) for _ in range(clients)]
    start = time.monotonic()
    until = start + seconds
    threads = [threading.Thread(target=run_client, args=(url, c, until)) for c in group]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - start  # the last turns started before the deadline finish after it
    turns = [t for c in group for t in c.turns]
    lost = sum(abs(stored_turns(db_url, c.session_id) - len(c.turns)) for c in group)
    ttfts = [t.ttft * 1000 for t in turns] or [0.0]
    tokens = sum(t.tokens for t in turns)
    load = Load(clients, len(turns), tokens / wall, median(ttfts), percentile(ttfts, 95),
                sum(len(c.errors) for c in group), lost)
    print(f"{label} N={clients:>2}: {load.turns:>4} turns in {wall:.0f} s ({tokens / max(load.turns, 1):.0f} tokens a "
          f"reply, {load.tok_s:.1f} tok/s served), TTFT p50 {load.ttft_p50:6.0f} ms p95 {load.ttft_p95:6.0f} ms, "
          f"errors {load.errors}, lost turns {lost}", flush=True)
    for message in sorted({e for c in group for e in c.errors})[:3]:
        print(f"      error: {message}")
    return load


def in_process(settings: Settings, turns: int) -> list[Turn]:
    engine = Engine(settings)
    try:
        engine.builder.cost(Message("user", "warm up"))  # load the model before timing
        session = engine.new_session("ember")
        results = []
        for i in range(turns):
            turn = session.send(PROMPTS[i % len(PROMPTS)])
            start, first = time.perf_counter(), None
            for _ in turn:
                first = first or time.perf_counter()
            done = time.perf_counter()
            results.append(Turn((first or done) - start, turn.result.completion_tokens, done - (first or done)))
        return results
    finally:
        engine.close()


def summary(turns: list[Turn]) -> tuple[float, float]:
    """p50 TTFT (ms) and decode tokens/s over all turns."""
    rate = sum(t.tokens for t in turns) / max(sum(t.decode_s for t in turns), 1e-9)
    return median([t.ttft * 1000 for t in turns]), rate


def overhead(settings: Settings, url: str, turns: int) -> None:
    local = in_process(settings, turns)
    with httpx2.Client(base_url=url, timeout=300) as http:
        sid = new_session(url)
        served = [streamed_turn(http, sid, PROMPTS[i % len(PROMPTS)]) for i in range(turns)]
    (ttft_l, rate_l), (ttft_s, rate_s) = summary(local[1:]), summary(served[1:])
    print(f"overhead ({turns - 1} turns each, first dropped): in-process TTFT p50 {ttft_l:.0f} ms, "
          f"{rate_l:.1f} tok/s; server TTFT p50 {ttft_s:.0f} ms, {rate_s:.1f} tok/s; "
          f"TTFT ratio {ttft_s / ttft_l:.2f}, tokens/s ratio {rate_s / rate_l:.2f}", flush=True)


def serve_loads(home: Path, env: dict[str, str], streams: int, clients: list[int], seconds: float) -> list[Load]:
    """The load phases on a fresh server decoding up to `streams` requests together."""
    folder = home / f"streams-{streams}"
    folder.mkdir()
    env = {**env, "ROLECRAFT_HOME": str(folder), "ROLECRAFT_CONFIG": str(folder / "config.toml"),
           "ROLECRAFT_BATCH_STREAMS": str(streams)}
    process, url = start_server(folder, env)
    try:
        label = "one at a time" if streams == 1 else f"batch of {streams}"
        return [load_phase(url, Settings(home=folder).db_url, n, seconds, label) for n in clients]
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of each load phase.")
    parser.add_argument("--clients", default="1,4,8", help="Concurrent clients per phase.")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (both sides).")
    parser.add_argument("--batch-streams", type=int, default=8,
                        help="The batched server's batch_streams (compared with 1, one at a time; 1: skip).")
    parser.add_argument("--overhead-turns", type=int, default=8, help="0: skip the overhead phase.")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="rolecraft-bench-"))
    env = {"ROLECRAFT_TEMPERATURE": "0", "ROLECRAFT_MAX_TOKENS": str(args.max_tokens),
           "ROLECRAFT_N_THREADS": str(args.threads)}
    clients = [int(n) for n in args.clients.split(",")]
    if args.overhead_turns:
        settings = Settings(home=home / "inproc", temperature=0.0, max_tokens=args.max_tokens, n_threads=args.threads)
        own = {**env, "ROLECRAFT_HOME": str(home), "ROLECRAFT_CONFIG": str(home / "config.toml")}
        process, url = start_server(home, own)
        try:
            overhead(settings, url, args.overhead_turns)
        finally:
            process.terminate()
            process.wait(timeout=30)
    alone = serve_loads(home, env, 1, clients, args.seconds)
    if args.batch_streams <= 1:
        return
    together = serve_loads(home, env, args.batch_streams, clients, args.seconds)
    for a, b in zip(alone, together, strict=True):
        print(f"N={a.clients:>2}: batch of {args.batch_streams} / one at a time: tok/s served "
              f"{b.tok_s / max(a.tok_s, 1e-9):.2f}x, TTFT p50 {a.ttft_p50:.0f} -> {b.ttft_p50:.0f} ms, "
              f"p95 {a.ttft_p95:.0f} -> {b.ttft_p95:.0f} ms")


if __name__ == "__main__":
    main()
