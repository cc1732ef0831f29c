"""Typed, frozen settings for each command, validated once at construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..models.device import PRECISIONS
from ..models.registry import check_side

LOSS_NAMES = ("mse", "l1", "huber", "ciede", "ssim", "colorfulness", "spread", "cast", "bins", "perceptual", "gan")
VALIDATION_SAMPLES = ("spread", "first")  # which photos of a validation split are scored (data.validation_sample)
SELECT_METRICS = ("psnr", "ssim", "ciede2000", "target", "frontier")  # validation metrics that can pick best.ckpt
PIXEL_LOSSES = ("mse", "l1", "huber", "ciede", "bins")


def parse_losses(spec: str) -> tuple[tuple[str, float], ...]:
    """'huber=1,ssim=0.1' -> (('huber', 1.0), ('ssim', 0.1))."""
    terms = []
    for part in spec.split(","):
        name, _, weight = part.strip().partition("=")
        name = name.strip()
        if name not in LOSS_NAMES:
            raise ValueError(f"unknown loss {name!r} in {spec!r}; choose from {', '.join(LOSS_NAMES)}")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"loss weight {weight!r} for {name!r} is not a number") from None
        if value < 0:
            raise ValueError(f"loss weight for {name!r} must be >= 0, got {value}")
        terms.append((name, value))
    if not any(name in PIXEL_LOSSES for name, _ in terms):
        raise ValueError(f"losses {spec!r} need a per-pixel term ({', '.join(PIXEL_LOSSES)})")
    return tuple(terms)


@dataclass(frozen=True)
class TrainConfig:
    data_dirs: tuple[Path, ...]
    out: Path
    arch: str = "fusion-s"
    model_args: dict = field(default_factory=dict)
    val_dir: Path | None = None
    val_fraction: float = 0.02
    max_val_images: int = 256
    val_sample: str = "spread"  # which max_val_images of the split: see data.validation_sample
    size: int = 128
    val_size: int | None = None  # validation render size (default: size)
    val_precision: str = "fp32"  # validation's precision: fp32 gives the same figures on every machine; auto: as training
    cache_dir: Path | None = None
    batch_size: int = 16
    steps: int | None = None
    epochs: float | None = None
    time_budget_min: float | None = None
    lr: float = 5e-4
    backbone_lr_scale: float = 0.2
    hint_lr_scale: float = 10.0  # guided models: the hint inputs start at zero and learn faster than the rest
    weight_decay: float = 0.01
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    losses: str = "huber=1,ssim=0.1"
    freeze_backbone: int = 4
    folder_balance: float = 0.5
    folder_weights: dict = field(default_factory=dict)  # folder name -> sampling factor
    min_scale: float = 0.35
    max_rotation: float = 10.0
    sharpen: float = 0.0  # largest unsharp-mask amount on the network's input lightness (0 = off)
    val_every: int = 250
    log_every: int = 25
    patience: int = 0
    select_metric: str = "psnr"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    init: Path | None = None
    min_image_side: int = 64
    progress: bool = True

    def __post_init__(self):
        if not self.data_dirs:
            raise ValueError("train needs at least one data folder")
        for folder in (*self.data_dirs, *([self.val_dir] if self.val_dir else [])):
            if not Path(folder).is_dir():
                raise ValueError(f"{folder}: not a folder")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise ValueError(f"{self.out}: the run folder must be a folder, and this is a file")
        check_side("size", self.size)
        check_side("val size", self.val_size)
        for folder, factor in self.folder_weights.items():
            if not 0 <= factor < float("inf"):
                raise ValueError(f"folder weight for {folder!r} must be a finite number >= 0, got {factor}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.steps is None and self.epochs is None and self.time_budget_min is None:
            raise ValueError("give a length: steps, epochs or a time budget")
        for name in ("steps", "epochs", "time_budget_min"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ValueError(f"val fraction must be in [0, 0.5), got {self.val_fraction}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {self.ema_decay}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.val_precision not in PRECISIONS:
            raise ValueError(f"validation precision must be one of {', '.join(PRECISIONS)}, got {self.val_precision!r}")
        if self.select_metric not in SELECT_METRICS:
            raise ValueError(f"select metric must be one of {', '.join(SELECT_METRICS)}, got {self.select_metric!r}")
        if not 0.05 <= self.min_scale <= 1.0:
            raise ValueError(f"min scale must be in [0.05, 1], got {self.min_scale}")
        if self.val_sample not in VALIDATION_SAMPLES:
            raise ValueError(f"val sample must be one of {', '.join(VALIDATION_SAMPLES)}, got {self.val_sample!r}")
        if not 0.0 <= self.sharpen <= 4.0:
            raise ValueError(f"sharpen must be in [0, 4], got {self.sharpen}")
        parse_losses(self.losses)

    @property
    def loss_terms(self) -> tuple[tuple[str, float], ...]:
        return parse_losses(self.losses)

    def to_dict(self) -> dict:
        """Plain types only, so the config fits in a weights_only checkpoint."""
        out = {}
        for key, value in asdict(self).items():
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [str(v) for v in value]
            out[key] = value
        return out

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        values.setdefault("val_sample", "first")  # runs made before the setting validated on the first photos
        values.setdefault("val_precision", values.get("precision", "auto"))  # ... and in their training precision
        values["data_dirs"] = tuple(Path(p) for p in values["data_dirs"])
        for key in ("out", "val_dir", "cache_dir", "init"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        return cls(**values)
