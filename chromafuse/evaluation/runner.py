"""Score colorizations against colour references: per image and aggregated, with a gray baseline.

Two modes: colorize the grayscale of each reference with one or two models, or score existing
predictions (``pred_dir``) paired with references by relative path, ignoring the extension.
"""

from __future__ import annotations

import heapq
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from skimage.color import lab2rgb, rgb2lab
from tqdm import tqdm

from ..color.fullres import lightness_of
from ..guidance.guide import Guidance
from ..guidance.hints import hints_from_truth
from ..guidance.reference import reference_from_rgb
from ..inference.colorizer import Colorizer
from ..media.images import ImageReadError, read_image
from ..media.listing import list_images
from .metrics import METRIC_SETTINGS, METRICS, aggregate, check_scorable, score_pair

PROTOCOLS = ("native", "256")
THUMBNAILS_KEPT = 60  # the worst images keep thumbnails for the HTML report


@dataclass(frozen=True)
class Thresholds:
    min_psnr: float | None = None
    min_ssim: float | None = None
    max_mse: float | None = None
    min_colorfulness: float | None = None
    max_ciede2000: float | None = None

    def misses(self, summary: dict) -> list[str]:
        """A line per missed threshold, saying by how much."""
        checks = [
            ("psnr", self.min_psnr, 1),
            ("ssim", self.min_ssim, 1),
            ("mse", self.max_mse, -1),
            ("ciede2000", self.max_ciede2000, -1),
            ("colorfulness", self.min_colorfulness, 1),
        ]
        lines = []
        for key, limit, direction in checks:
            if limit is None:
                continue
            value = summary[key]["mean"]
            if not np.isfinite(value) or (value - limit) * direction < 0:
                word = "at least" if direction > 0 else "at most"
                lines.append(f"mean {key} {value:.4g} misses the threshold ({word} {limit:g}) by {abs(value - limit):.4g}")
        return lines


@dataclass(frozen=True)
class EvaluateConfig:
    reference_dir: Path
    pred_dir: Path | None = None
    weights: tuple[Path | None, ...] = (None,)
    protocol: str = "native"
    size: int | None = None
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 8
    recursive: bool = True
    thresholds: Thresholds = Thresholds()
    progress: bool = True
    saturation: float | None = None
    detail: float | None = None
    backend: str = "auto"
    hints_from_truth: int = 0  # guided: this many points per image, sampled from the reference (fixed seed)
    reference_from_truth: bool = False  # guided: each reference photo is its own global hint
    seed: int = 0

    @property
    def guided(self) -> bool:
        return self.hints_from_truth > 0 or self.reference_from_truth

    def __post_init__(self):
        if not 0 <= self.hints_from_truth <= 1000:
            raise ValueError(f"--hints-from-truth must be in 0..1000, got {self.hints_from_truth}")
        if self.guided and self.pred_dir is not None:
            raise ValueError("--hints-from-truth and --reference-from-truth colorize; they do not apply to --pred")
        if not Path(self.reference_dir).is_dir():
            raise ValueError(f"{self.reference_dir}: not a folder")
        if self.pred_dir is not None and not Path(self.pred_dir).is_dir():
            raise ValueError(f"{self.pred_dir}: not a folder")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if not self.weights:
            raise ValueError("give at least one model to evaluate")


@dataclass
class ModelScores:
    name: str
    weights: str
    render: dict = field(default_factory=dict)  # Colorizer.render_settings() of a model; empty for predictions and gray
    rows: list[dict] = field(default_factory=list)
    thumbnails: list[tuple[float, str, bytes, bytes]] = field(default_factory=list)  # heap of (ciede, file, ref, pred)

    def summary(self) -> dict:
        keys = (*METRICS, "colorfulness_ref")
        return {key: aggregate(self.rows, key) for key in keys}

    def keep_thumbnail(self, file: str, ciede: float, ref: np.ndarray, pred: np.ndarray) -> None:
        item = (ciede, file, _thumbnail(ref), _thumbnail(pred))
        if len(self.thumbnails) < THUMBNAILS_KEPT:
            heapq.heappush(self.thumbnails, item)
        elif ciede > self.thumbnails[0][0]:
            heapq.heapreplace(self.thumbnails, item)


@dataclass
class Evaluation:
    protocol: str
    reference_dir: str
    models: list[ModelScores]
    baseline: ModelScores
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    render_size: int | None = None
    settings: dict = field(default_factory=lambda: dict(METRIC_SETTINGS))

    @property
    def primary(self) -> ModelScores:
        return self.models[0]

    @property
    def problems(self) -> list[str]:
        return [f"missing prediction for {m}" for m in self.missing] + [f"{f}: {reason}" for f, reason in self.failed]


def _thumbnail(rgb: np.ndarray, width: int = 160) -> bytes:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def load_reference(path: Path, protocol: str) -> np.ndarray:
    image = read_image(path)
    rgb = image.rgb8()
    if protocol == "256":
        rgb = cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)
    return rgb


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """The Lab lightness of an RGB uint8 image with a = b = 0, as RGB uint8 (the model's input)."""
    lab = rgb2lab(rgb)
    lab[..., 1:] = 0.0
    return (np.clip(lab2rgb(lab), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _key(relative: Path) -> str:
    return str(relative.with_suffix("")).replace("\\", "/")


def evaluate(cfg: EvaluateConfig) -> Evaluation:
    refs = {_key(p.relative_to(cfg.reference_dir)): p for p in list_images([Path(cfg.reference_dir)], cfg.recursive)}
    if not refs:
        raise ValueError(f"no reference images found in {cfg.reference_dir}")
    baseline = ModelScores("gray input (baseline)", "-")
    if cfg.pred_dir is not None:
        return _evaluate_predictions(cfg, refs, baseline)
    colorizers = [
        Colorizer.load(w, cfg.device, cfg.precision, cfg.size, cfg.saturation, cfg.backend, cfg.guided and w is None, cfg.detail)
        for w in cfg.weights
    ]
    if cfg.guided:
        colorizers = [c.for_guidance() for c in colorizers]  # a model that takes no hints is refused here
    models = [ModelScores(_label(c, i, len(colorizers)), str(c.weights), c.render_settings()) for i, c in enumerate(colorizers)]
    result = Evaluation(cfg.protocol, str(cfg.reference_dir), models, baseline, render_size=colorizers[0].size)
    if cfg.guided:
        result.settings["guidance"] = _guidance_protocol(cfg)
    keys = sorted(refs)
    with tqdm(total=len(keys), desc="evaluate", unit="img", disable=not cfg.progress) as bar:
        for start in range(0, len(keys), cfg.batch_size):
            batch = []
            for key in keys[start : start + cfg.batch_size]:
                try:
                    ref = load_reference(refs[key], cfg.protocol)
                    check_scorable(ref)
                except (ImageReadError, ValueError) as error:
                    result.failed.append((str(refs[key]), str(error)))
                    continue
                gray = gray_of(ref)
                _score_into(baseline, key, gray, ref, thumbnails=False)
                batch.append((key, ref, gray))
            if batch:
                lightness = [lightness_of(gray) for _, _, gray in batch]
                guidance = [_truth_guidance(cfg, key, ref) for key, ref, _ in batch] if cfg.guided else None
                for colorizer, scores in zip(colorizers, models):
                    for (key, ref, _), rgb in zip(batch, colorizer.colorize_lightness(lightness, 8, guidance)):
                        _score_into(scores, key, rgb, ref)
            bar.update(len(keys[start : start + cfg.batch_size]))
    return result


def _truth_guidance(cfg: EvaluateConfig, key: str, ref: np.ndarray) -> Guidance:
    """Hints and / or a global hint from the reference itself; the points depend on the seed and the file only."""
    rng = np.random.default_rng([cfg.seed, zlib.crc32(key.encode())])
    hints = tuple(hints_from_truth(ref, cfg.hints_from_truth, rng)) if cfg.hints_from_truth else ()
    return Guidance(hints, reference_from_rgb(ref) if cfg.reference_from_truth else None)


def _guidance_protocol(cfg: EvaluateConfig) -> str:
    parts = []
    if cfg.hints_from_truth:
        parts.append(
            f"{cfg.hints_from_truth} hint(s) per image from the reference: uniform positions (seed {cfg.seed} and the file "
            "name), each a 5x5 patch given its true mean ab"
        )
    if cfg.reference_from_truth:
        parts.append("each reference photo as its own global hint (its ab histogram)")
    return "; ".join(parts)


def _label(colorizer: Colorizer, index: int, count: int) -> str:
    return colorizer.name if count == 1 else f"{chr(ord('A') + index)}: {colorizer.name} ({colorizer.weights.name})"


def _score_into(scores: ModelScores, key: str, pred: np.ndarray, ref: np.ndarray, thumbnails: bool = True) -> None:
    row = {"file": key, **score_pair(pred, ref)}
    scores.rows.append(row)
    if thumbnails:
        scores.keep_thumbnail(key, row["ciede2000"], ref, pred)


def _evaluate_predictions(cfg: EvaluateConfig, refs: dict[str, Path], baseline: ModelScores) -> Evaluation:
    preds = {_key(p.relative_to(cfg.pred_dir)): p for p in list_images([Path(cfg.pred_dir)], cfg.recursive)}
    scores = ModelScores(f"predictions in {cfg.pred_dir}", str(cfg.pred_dir))
    result = Evaluation(cfg.protocol, str(cfg.reference_dir), [scores], baseline)
    result.missing = [str(refs[k]) for k in sorted(refs) if k not in preds]
    result.extra = [str(preds[k]) for k in sorted(preds) if k not in refs]
    for key in tqdm(sorted(k for k in refs if k in preds), desc="evaluate", unit="img", disable=not cfg.progress):
        try:
            ref = load_reference(refs[key], "native")
            check_scorable(ref)
            pred = read_image(preds[key]).rgb8()
        except (ImageReadError, ValueError) as error:
            result.failed.append((key, str(error)))
            continue
        if pred.shape != ref.shape:
            result.failed.append(
                (key, f"size mismatch: prediction {pred.shape[1]}x{pred.shape[0]}, reference {ref.shape[1]}x{ref.shape[0]}")
            )
            continue
        if cfg.protocol == "256":
            ref = cv2.resize(ref, (256, 256), interpolation=cv2.INTER_AREA)
            pred = cv2.resize(pred, (256, 256), interpolation=cv2.INTER_AREA)
        _score_into(baseline, key, gray_of(ref), ref, thumbnails=False)
        _score_into(scores, key, pred, ref)
    return result
