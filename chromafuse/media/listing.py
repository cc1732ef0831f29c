"""Which files a run reads: folders walked (sorted, hidden entries skipped, symlinked folders followed once),
files and globs expanded, and what cannot be listed reported rather than skipped in silence."""

from __future__ import annotations

import glob
import os
from pathlib import Path

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"}


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_video_path(path: Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _walk(
    root: Path, recursive: bool, problems: list[tuple[str, str]] | None, exclude: Path | None, suffixes: set[str]
) -> list[Path]:
    """Files under ``root`` with one of ``suffixes`` (symlinked folders followed once each); what cannot be read is added to
    ``problems`` as (path, reason): unreadable folders, links that point nowhere, link loops."""
    found: list[Path] = []
    seen: set[str] = set()

    def note(path: str, reason: str) -> None:
        if problems is not None:
            problems.append((path, reason))

    def on_error(error: OSError) -> None:
        note(error.filename or str(root), f"cannot be read ({error.strerror or error})")

    for folder, dirs, files in os.walk(root, onerror=on_error, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            note(folder, "a link back into a folder already listed (a symbolic-link loop): skipped")
            dirs[:] = []
            continue
        seen.add(real)
        here = Path(folder)
        if exclude is not None and (here == exclude or exclude in here.parents):
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in suffixes:
                continue
            if path.is_symlink() and not path.exists():
                note(str(path), "a symbolic link to a file that does not exist")
            else:
                found.append(path)
    return sorted(found)


def list_images(
    paths: list[Path],
    recursive: bool = True,
    problems: list[tuple[str, str]] | None = None,
    exclude: Path | None = None,
    videos: bool = False,
) -> list[Path]:
    """Image files (and, with ``videos``, video files) under folders (sorted, hidden entries skipped), plus
    files given directly. Entries that cannot be listed go to ``problems``; files under ``exclude`` (a run's
    own output folder) are left out."""
    suffixes = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS if videos else IMAGE_EXTENSIONS
    found: list[Path] = []
    exclude = Path(os.path.abspath(exclude)) if exclude is not None else None
    for path in map(Path, paths):
        if path.is_dir():
            root = Path(os.path.abspath(path))
            inner = exclude if exclude is not None and exclude != root else None  # an output folder inside this one
            found += [path / p.relative_to(root) for p in _walk(root, recursive, problems, inner, suffixes)]
        elif path.is_file():
            found.append(path)
    return found


def expand_inputs(
    inputs: list[str],
    recursive: bool = True,
    problems: list[tuple[str, str]] | None = None,
    exclude: Path | None = None,
    videos: bool = False,
) -> list[tuple[Path, Path]]:
    """Files, folders and globs -> sorted (file, path relative to its input root) pairs.

    A folder contributes its images (and videos, with ``videos``; any name a user gave directly is kept even with an odd
    extension, so that it is reported rather than ignored); what a folder holds that cannot be read goes
    to ``problems``, and its files under ``exclude`` are left out. Missing inputs raise ValueError.
    """
    pairs: list[tuple[Path, Path]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            pairs += [(p, p.relative_to(path)) for p in list_images([path], recursive, problems, exclude, videos)]
        elif path.is_file():
            pairs.append((path, Path(path.name)))
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise ValueError(f"{item}: the pattern matches no files")
            pairs += [(m, Path(m.name)) for m in matches if m.is_file()]
        else:
            raise ValueError(f"{item}: no such file or folder")
    return pairs
