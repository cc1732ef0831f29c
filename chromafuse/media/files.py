"""How chromafuse writes the files a user names: one check first (never an input, never a folder, never
an existing file without --overwrite), then a temporary file renamed into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """Where chromafuse keeps what it can rebuild (decoded training photos, ONNX builds): CHROMAFUSE_CACHE
    or ~/.cache/chromafuse."""
    return Path(os.environ.get("CHROMAFUSE_CACHE", Path.home() / ".cache" / "chromafuse"))


def check_output_file(path: Path, what: str, protected: set[Path] = frozenset(), overwrite: bool = False) -> None:
    """The one check before chromafuse writes a file the user named: never onto a folder, never onto one
    of the run's inputs (``protected``, resolved paths), never over an existing file unless ``overwrite``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path}: is a folder; give a file name")
    if path.resolve() in protected:
        raise ValueError(f"{what} {path}: is one of this run's inputs and is never overwritten")
    if path.exists() and not overwrite:
        raise ValueError(f"{what} {path} exists; pass --overwrite to replace it")


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a hidden temporary file beside ``path``, then rename: never a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
