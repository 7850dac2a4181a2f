"""Cold start of `rolecraft chat` to the first streamed token, vs a bare llama-cpp-python script.

Run: .venv/bin/python benchmarks/cold_start.py [--reps 5] [--threads 2]
Each rep times three fresh processes: `rolecraft chat --new` on a fresh data folder (it also
creates the database, installs the sample characters and computes Ember's prefix KV cache),
`rolecraft chat --new` again on a data folder that has chatted with Ember before (a new chat:
the prefix cache is restored from disk), and the baseline: a Python process that imports
llama_cpp, loads the same GGUF and streams the first token of a similar short prompt. A second
baseline does the same work rolecraft does without its caches: a bare script reading the exact
prompt of a new chat's first turn (card, examples, greeting, lore, instructions) from scratch.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median

import rolecraft
from rolecraft.backends.models import resolve_gguf

BASELINE = """
import sys, llama_cpp
threads = int(sys.argv[2])
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
msgs = [{"role": "system", "content": "You are Ember."}, {"role": "user", "content": "Hello there!"}]
for chunk in llm.create_chat_completion(messages=msgs, max_tokens=8, stream=True):
    if chunk["choices"][0]["delta"].get("content"):
        sys.stdout.write("TOKEN\\n"); sys.stdout.flush(); break
"""

SAME_PROMPT = """
import json, sys, llama_cpp
threads, tokens = int(sys.argv[2]), json.loads(open(sys.argv[3]).read())
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
for token in llm.generate(tokens, temp=0.0):
    sys.stdout.write("TOKEN\\n"); sys.stdout.flush(); break
"""


def new_chat_prompt(folder: Path, threads: int) -> tuple[Path, int, int]:
    """The token ids of a new chat's first prompt ("Good evening!" to Ember), written to a file; with the
    number of them and of the leading ones a saved prefix covers."""
    from rolecraft.backends.prefix_cache import stable_count
    from rolecraft.conversation import Engine
    from rolecraft.conversation.media import Perceived
    from rolecraft.settings import Settings

    engine = Engine(Settings(home=folder, n_threads=threads))
    try:
        session = engine.new_session("ember")
        plan, _ = session.plan(session.recent(), Perceived("Good evening!"))
        backend = engine.backend
        tokens = backend.prompt_tokens(plan.messages)
        stable = backend.template.ids(plan.messages[:stable_count(plan.messages)], generation_prompt=False)
    finally:
        engine.close()
    path = folder / "prompt.json"
    path.write_text(json.dumps(tokens))
    shared = next((i for i, (a, b) in enumerate(zip(stable, tokens, strict=False)) if a != b), len(stable))
    return path, len(tokens), shared


def wall(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds a process takes from spawn to exit."""
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    return time.perf_counter() - start


def first_byte(cmd: list[str], marker: bytes, env: dict[str, str], stdin: bytes = b"", nth: int = 1) -> float:
    """Seconds from spawn until the `nth` `marker` and one more byte appeared on stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    proc.stdin.write(stdin)
    proc.stdin.close()
    seen = b""
    while True:
        byte = proc.stdout.read(1)
        if not byte:
            raise RuntimeError(f"{cmd[0]} ended before its first token: {seen!r}")
        seen += byte
        index = seen.rfind(marker)
        if seen.count(marker) >= nth and len(seen) > index + len(marker):
            elapsed = time.perf_counter() - start
            proc.kill()
            proc.wait()
            return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads, the same for both")
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("rolecraft")
    model = str(resolve_gguf("smollm2"))
    compileall.compile_dir(Path(rolecraft.__file__).parent, quiet=1)  # the bytecode an installed package has
    prompt, length, shared = new_chat_prompt(Path(tempfile.mkdtemp(prefix="rolecraft-cold-")), args.threads)
    fresh, new_chat, raw, same, ours, theirs = [], [], [], [], [], []
    chat = [str(exe), "chat", "--new"]
    for _ in range(args.reps):
        home = tempfile.mkdtemp(prefix="rolecraft-cold-")
        env = {**os.environ, "ROLECRAFT_HOME": home, "ROLECRAFT_N_THREADS": str(args.threads)}
        fresh.append(first_byte(chat, b"Ember: ", env, b"Hello there!\n", nth=2))
        new_chat.append(first_byte(chat, b"Ember: ", env, b"Good evening!\n", nth=2))
        raw.append(first_byte([sys.executable, "-c", BASELINE, model, str(args.threads)], b"TOKEN", env))
        same.append(first_byte([sys.executable, "-c", SAME_PROMPT, model, str(args.threads), str(prompt)],
                               b"TOKEN", env))
        ours.append(wall([sys.executable, "-c", "import rolecraft.cli.chat, llama_cpp"], env))
        theirs.append(wall([sys.executable, "-c", "import llama_cpp"], env))
    print(f"a new chat's first prompt: {length} tokens, {shared} of them in the saved prefix, "
          f"{length - shared} read per new chat")
    for label, times in (("rolecraft chat, first chat on a fresh home:", fresh),
                         ("rolecraft chat, a new chat (prefix cached): ", new_chat),
                         ("bare llama-cpp-python script, short prompt: ", raw),
                         ("bare llama-cpp-python, the same prompt:     ", same),
                         ("python importing rolecraft chat + llama_cpp:", ours),
                         ("python importing llama_cpp:                 ", theirs)):
        print(f"{label} median {median(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)})")
    print(f"ratio to bare (short prompt): new chat {median(new_chat) / median(raw):.2f}, "
          f"fresh home {median(fresh) / median(raw):.2f}; to bare with the same prompt: new chat "
          f"{median(new_chat) / median(same):.2f}")


if __name__ == "__main__":
    main()
