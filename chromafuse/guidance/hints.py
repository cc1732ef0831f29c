"""Local hints: points of known colour, as users give them and as the model reads them.

A user's hint is a point in the input's own pixel coordinates, a colour (``#rrggbb``) and an optional
radius (pixels of the input); only the colour's ab counts, its lightness is ignored. The model reads
hints at its render size as one (3, S, S) map: a and b (divided by 110) where a hint lies, and a mask.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..color.lab import AB_SCALE, rgb_to_lab

HINT_CHANNELS = 3
DEFAULT_RENDER_RADIUS = 2  # a hint without a radius covers a 5 x 5 patch at the render size
_HEX = re.compile(r"#?([0-9a-fA-F]{6})")


class HintError(ValueError):
    """A hint, a hints file or a reference that cannot be used, with the value that is wrong."""


@dataclass(frozen=True)
class Hint:
    x: float
    y: float
    color: str  # "#rrggbb"
    radius: float | None = None  # in input pixels; None: a 5 x 5 patch at the render size
    exact_ab: tuple[float, float] | None = None  # the ab itself, when known better than #rrggbb holds it

    def ab(self) -> tuple[float, float]:
        return self.exact_ab if self.exact_ab is not None else ab_of_hex(self.color)

    def check_inside(self, width: int, height: int, where: str) -> None:
        if not (0 <= self.x < width and 0 <= self.y < height):
            raise HintError(f"{where}: the hint at ({self.x:g}, {self.y:g}) is outside the {width}x{height} image")


def parse_color(value: object, where: str) -> str:
    """'#b02a2a' or 'b02a2a' -> '#b02a2a'; anything else is a HintError naming it."""
    match = _HEX.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise HintError(f"{where}: colour {value!r} is not #RRGGBB")
    return "#" + match.group(1).lower()


def rgb_of_hex(color: str) -> tuple[int, int, int]:
    """'#b02a2a' -> (176, 42, 42)."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def ab_of_hex(color: str) -> tuple[float, float]:
    rgb = torch.tensor([v / 255.0 for v in rgb_of_hex(color)], dtype=torch.float64).view(3, 1, 1)
    lab = rgb_to_lab(rgb)
    return float(lab[1, 0, 0]), float(lab[2, 0, 0])


def make_hint(x: object, y: object, color: object, radius: object = None, where: str = "hint") -> Hint:
    """A Hint from loosely typed values (JSON, a form), each checked with a message naming ``where``."""
    coords = []
    for name, value in (("x", x), ("y", y)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise HintError(f"{where}: {name} {value!r} is not a number")
        coords.append(float(value))
    if radius is not None and (isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 <= radius <= 10_000):
        raise HintError(f"{where}: radius {radius!r} is not a number of pixels (0 to 10000)")
    return Hint(coords[0], coords[1], parse_color(color, where), None if radius is None else float(radius))


def parse_hint_option(text: str) -> Hint:
    """'X,Y:#RRGGBB' (or 'X,Y:#RRGGBB:RADIUS'), as ``--hint`` takes it."""
    where = f"--hint {text!r}"
    coords, sep, rest = text.partition(":")
    parts = coords.split(",")
    if not sep or len(parts) != 2:
        raise HintError(f"{where}: expected X,Y:#RRGGBB (e.g. 120,80:#b02a2a)")
    color, _, radius = rest.partition(":")
    try:
        x, y = float(parts[0]), float(parts[1])
        size = float(radius) if radius else None
    except ValueError:
        raise HintError(f"{where}: expected numbers in X,Y:#RRGGBB[:RADIUS]") from None
    return make_hint(x, y, color, size, where)


def load_hints_file(path: Path) -> dict[str, list[Hint]]:
    """HINTS.json: {"name.jpg" or "sub/name.jpg": [{"x": .., "y": .., "color": "#rrggbb", "radius": ..}, ..]}."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise HintError(f"{path}: cannot read the hints file: {error.strerror or error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HintError(f"{path}: not a JSON hints file: {error}") from None
    if not isinstance(data, dict):
        raise HintError(f"{path}: expected an object mapping file names to lists of hints")
    hints: dict[str, list[Hint]] = {}
    for name, points in data.items():
        if not isinstance(points, list):
            raise HintError(f"{path}: {name!r} must map to a list of hints, got {type(points).__name__}")
        parsed = []
        for number, point in enumerate(points):
            where = f"{path}: {name!r} hint {number}"
            if not isinstance(point, dict) or not {"x", "y", "color"} <= set(point):
                raise HintError(f'{where}: expected {{"x": .., "y": .., "color": "#rrggbb"}}, got {point!r}')
            unknown = set(point) - {"x", "y", "color", "radius"}
            if unknown:
                raise HintError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
            parsed.append(make_hint(point["x"], point["y"], point["color"], point.get("radius"), where))
        hints[name.replace("\\", "/")] = parsed
    return hints


def hint_map(hints: list[Hint], width: int, height: int, size: int) -> np.ndarray:
    """Hints on a ``width`` x ``height`` input -> the (3, size, size) map the model reads at its render size
    (the input is squashed to the square, as the lightness is)."""
    out = np.zeros((HINT_CHANNELS, size, size), np.float32)
    for hint in hints:
        cx, cy = int(hint.x * size / width), int(hint.y * size / height)
        if hint.radius is None:
            rx = ry = DEFAULT_RENDER_RADIUS
        else:
            rx, ry = int(round(hint.radius * size / width)), int(round(hint.radius * size / height))
        a, b = hint.ab()
        rows = slice(max(cy - ry, 0), min(cy + ry + 1, size))
        cols = slice(max(cx - rx, 0), min(cx + rx + 1, size))
        out[0, rows, cols], out[1, rows, cols], out[2, rows, cols] = a / AB_SCALE, b / AB_SCALE, 1.0
    return out


def hints_from_truth(rgb: np.ndarray, count: int, rng: np.random.Generator, radius: int = 2) -> list[Hint]:
    """``count`` hints taken from a true colour image (H, W, 3) uint8, as ``evaluate --hints-from-truth`` takes
    them: positions uniform over the image, each a square of side 2 * radius + 1 given the square's true mean ab."""
    height, width = rgb.shape[:2]
    hints = []
    for _ in range(count):
        y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
        patch = rgb[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1]
        lab = rgb_to_lab(torch.from_numpy(patch.astype(np.float32) / 255.0).permute(2, 0, 1)).flatten(1).mean(1)
        mean_rgb = patch.reshape(-1, 3).mean(0).round().astype(int)
        color = "#" + "".join(f"{v:02x}" for v in mean_rgb)
        hints.append(Hint(float(x), float(y), color, float(radius), (float(lab[1]), float(lab[2]))))
    return hints
