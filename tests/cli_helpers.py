"""Run the real `rolecraft` console script in a subprocess with an isolated home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXE = Path(sys.executable).with_name("rolecraft")


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLECRAFT_")}
    env.update(ROLECRAFT_HOME=str(home), ROLECRAFT_CONFIG=str(home / "config.toml"), ROLECRAFT_TEMPERATURE="0",
               ROLECRAFT_MAX_TOKENS="24", ROLECRAFT_N_THREADS="2", ROLECRAFT_SEED="1", PYTHONUNBUFFERED="1")
    if url := os.environ.get("ROLECRAFT_TEST_DATABASE_URL"):
        env["ROLECRAFT_DATABASE_URL"] = url
    env.update(extra)
    return env


def rolecraft(home: Path, *args: str, stdin: str = "", timeout: float = 400, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=cli_env(home, **env))
