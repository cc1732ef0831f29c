"""The guidance options of ``colorize`` (``--hints FILE``, ``--hint X,Y:#RRGGBB``, ``--reference PHOTO``),
read and checked before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .guide import load_reference
from .hints import Hint, HintError, load_hints_file, parse_hint_option


def read_guidance(
    inputs: list[str], hints_file: Path | None, hint_options: list[str], reference: Path | None
) -> tuple[dict[str, tuple[Hint, ...]] | None, np.ndarray | None]:
    """(hints by input name or relative path, or None; the reference's global hint, or None)."""
    hints: dict[str, tuple[Hint, ...]] | None = None
    if hints_file is not None and hint_options:
        raise HintError("use either --hints FILE or --hint, not both")
    if hints_file is not None:
        hints = {name: tuple(points) for name, points in load_hints_file(hints_file).items()}
    if hint_options:
        if len(inputs) != 1 or not Path(inputs[0]).is_file():
            raise HintError("--hint applies to one input file; for folders or several files use --hints FILE")
        hints = {Path(inputs[0]).name: tuple(parse_hint_option(text) for text in hint_options)}
    return hints, load_reference(reference) if reference is not None else None
