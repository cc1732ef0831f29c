"""``train(config)``: folders of colour photos in, a colorization checkpoint out.

Runs on one CPU or GPU, or on several processes under ``torchrun`` (DistributedDataParallel;
rank 0 validates, logs and writes checkpoints). Resuming restores the model, optimiser, EMA,
schedule position and every random generator, so a step-based run that is interrupted and
resumed ends with the same weights as one that was not.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from . import __version__
from .checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from .color import rgb_to_lab
from .config import TrainConfig
from .data import ImageCache, augment_batch, build_cache, decode_squares, resize_batch, sampling_weights, split_indices
from .device import autocast, resolve_device, resolve_precision, uses_channels_last
from .losses import total_loss
from .metrics_torch import batch_quality
from .models import create_model, model_args_for
from .trainlog import TrainLog

LAST, BEST = "last.ckpt", "best.ckpt"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    best_step: int
    best_metrics: dict
    last_metrics: dict
    stopped_because: str


@dataclass
class _Data:
    cache: ImageCache
    train_idx: np.ndarray
    weights: torch.Tensor
    val_images: torch.Tensor  # (N, 3, val_size, val_size) float in [0, 1]
    summary: dict


def _setup_distributed(device_name: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, resolve_device(device_name)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def _prepare_data(cfg: TrainConfig, rank: int, world: int) -> _Data:
    cache_size = int(round(cfg.size * 1.25 / 32)) * 32
    val_size = cfg.val_size or cfg.size

    if world > 1 and rank != 0:
        dist.barrier()  # rank 0 builds the caches first
    cache = build_cache(list(cfg.data_dirs), cache_size, cfg.cache_dir, cfg.min_image_side)
    val_cache = build_cache([cfg.val_dir], val_size, cfg.cache_dir, cfg.min_image_side) if cfg.val_dir else None
    if world > 1 and rank == 0:
        dist.barrier()
    if val_cache is None:
        train_idx, val_idx = split_indices(cache.files, cfg.val_fraction)
        val_idx = val_idx[: cfg.max_val_images]
        same_scale = val_size == cfg.size
        val_source = cache.images[val_idx] if same_scale else decode_squares([cache.files[i] for i in val_idx], val_size)
    else:
        train_idx = np.arange(len(cache.files))
        val_source = val_cache.images[: cfg.max_val_images]
    if len(train_idx) == 0:
        raise ValueError("no training images left after the validation split")
    val_images = resize_batch(torch.from_numpy(np.array(val_source)), val_size) if len(val_source) else torch.empty(0)
    summary = {
        **cache.summary(),
        "train_images": int(len(train_idx)),
        "val_images": int(len(val_images)),
        "val_source": str(cfg.val_dir) if cfg.val_dir else f"hash split {cfg.val_fraction:g} of the training folders",
    }
    weights = sampling_weights(cache.groups[train_idx], cfg.folder_balance, cache.group_names, cfg.folder_weights)
    return _Data(cache, train_idx, weights, val_images, summary)


def _build_model(cfg: TrainConfig) -> tuple[torch.nn.Module, dict, set[str]]:
    """The model, its full constructor arguments, and the names of the tensors not loaded from ``--init``."""
    model_args = model_args_for(cfg.arch, **cfg.model_args)
    model = create_model(cfg.arch, **model_args)
    fresh = set(model.state_dict())
    if cfg.init is not None:
        source = read_checkpoint(cfg.init)
        if source.arch != cfg.arch:
            raise ValueError(f"{cfg.init}: holds a {source.arch!r} model, not {cfg.arch!r}")
        fresh = _load_matching(model, source.state_dict, cfg.init)
    if hasattr(model, "freeze_backbone") and cfg.freeze_backbone >= 0:
        model.freeze_backbone(cfg.freeze_backbone)
    return model, model_args, fresh


def _load_matching(model: torch.nn.Module, state: dict, source: Path) -> set[str]:
    """Load every tensor whose name and shape match; say which of the model's stay freshly initialised
    (fine-tuning onto another head, e.g. regression weights into a bins model)."""
    own = model.state_dict()
    usable = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if k in own and own[k].shape == v.shape}
    fresh = sorted(set(own) - set(usable))
    if fresh:
        warnings.warn(f"{source}: {len(fresh)} tensors do not match this model and start fresh: {', '.join(fresh)}", stacklevel=2)
    model.load_state_dict(usable, strict=False)
    return set(fresh)


def _fit_colour_prior(model: torch.nn.Module, data: _Data, fresh: set[str], samples: int = 2000, size: int = 64) -> None:
    """Give a bins head its class-rebalancing weights from the training images' ab histogram, and
    start a freshly initialised head at that prior."""
    bins = getattr(model, "bins", None)
    if bins is None:
        return
    picks = np.sort(data.train_idx[np.linspace(0, len(data.train_idx) - 1, min(samples, len(data.train_idx))).astype(int)])
    rgb = resize_batch(torch.from_numpy(np.ascontiguousarray(data.cache.images[picks])), size)
    prior = bins.fit_prior(rgb_to_lab(rgb)[:, 1:])
    if f"{model.bins_head_name}.bias" in fresh:
        model.start_from_prior(prior)


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    backbone, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (backbone if name.startswith("encoder.") else rest).append(param)
    groups = [{"params": rest, "lr": cfg.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": cfg.lr * cfg.backbone_lr_scale})
    for group in groups:
        group["base_lr"] = group["lr"]
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def _lr_factor(step: int, progress: float, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _total_steps(cfg: TrainConfig, train_images: int, world: int) -> int | None:
    candidates = []
    if cfg.steps is not None:
        candidates.append(cfg.steps)
    if cfg.epochs is not None:
        candidates.append(math.ceil(cfg.epochs * train_images / (cfg.batch_size * world)))
    return min(candidates) if candidates else None


def _lab_batch(rgb: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    lab = rgb_to_lab(rgb.to(device))
    return lab[:, :1], lab[:, 1:]


@torch.no_grad()
def validate(model: torch.nn.Module, images: torch.Tensor, device: torch.device, precision: str, batch_size: int = 32) -> dict:
    """Mean PSNR / SSIM / colourfulness on RGB of L + predicted ab against the true images."""
    was_training = model.training
    model.eval()
    scores = []
    for start in range(0, len(images), batch_size):
        lightness, ab = _lab_batch(images[start : start + batch_size], device)
        with autocast(device, precision):
            pred = model(_to_layout(lightness, device, precision))
        scores.append(batch_quality(lightness, pred.float(), ab))
    model.train(was_training)
    merged = {key: torch.cat([s[key] for s in scores]) for key in scores[0]}
    return {key: float(value.mean()) for key, value in merged.items()}


def _to_layout(x: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if uses_channels_last(device, precision) else x


LOWER_IS_BETTER = ("ciede2000",)


def _is_better(metrics: dict, best: float | None, select: str) -> bool:
    if best is None:
        return True
    return metrics[select] < best if select in LOWER_IS_BETTER else metrics[select] > best


class _Trainer:
    """One training run: set up once, then ``run()`` steps until a stop condition."""

    def __init__(self, cfg: TrainConfig, resume: bool):
        self.cfg = cfg
        self.rank, self.world, self.device = _setup_distributed(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.is_main = self.rank == 0
        self.run_dir = Path(cfg.out)
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if not resume and (self.run_dir / LAST).exists():
                raise FileExistsError(
                    f"{self.run_dir} already holds a run ({LAST}); resume it with --resume or choose another --out"
                )
        torch.manual_seed(cfg.seed + self.rank)
        self.data = _prepare_data(cfg, self.rank, self.world)
        self.model, self.model_args, fresh = _build_model(cfg)
        self.uses_bins = any(name == "bins" for name, _ in cfg.loss_terms)
        if self.uses_bins and getattr(self.model, "bins", None) is None:
            raise ValueError(f"the 'bins' loss needs a model with a bins head; {cfg.arch} here has none (--model-arg head=bins)")
        if not resume:
            _fit_colour_prior(self.model, self.data, fresh)
        self.model.to(self.device)
        if uses_channels_last(self.device, self.precision):
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = _optimizer(self.model, cfg)
        self.ema = (
            AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
            if cfg.ema_decay > 0
            else None
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and self.precision == "fp16")
        self.generator = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank)
        self.state = {
            "step": 0,
            "samples": 0,
            "elapsed_s": 0.0,
            "best_metric": None,
            "best_step": 0,
            "bad_validations": 0,
            "last_metrics": {},
        }
        if resume:
            self.state = _restore(self.run_dir / LAST, self.model, self.optimizer, self.ema, self.generator, self.rank)
        loss_names = [name for name, _ in cfg.loss_terms]
        self.log = TrainLog(self.run_dir / "log.csv", loss_names, resume_step=self.state["step"]) if self.is_main else None
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids) if self.world > 1 else self.model
        self.total_steps = _total_steps(cfg, len(self.data.train_idx), self.world)
        self.budget_s = cfg.time_budget_min * 60.0 if cfg.time_budget_min else None

    def run(self) -> TrainResult:
        bar = tqdm(
            total=self.total_steps,
            initial=self.state["step"],
            desc="train",
            unit="step",
            dynamic_ncols=True,
            disable=not (self.is_main and self.cfg.progress),
        )
        window = {"loss": 0.0, "n": 0, "parts": {}, "t0": time.perf_counter(), "samples0": self.state["samples"]}
        self.net.train()
        try:
            while not (reason := self._stop_reason()):
                loss, parts = self._step()
                _accumulate(window, loss, parts)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.2e}")
                self._after_step(window)
        finally:
            bar.close()
        if self.world > 1:
            dist.barrier()
        best = _best_metrics(self.run_dir) if self.is_main else {}
        return TrainResult(self.run_dir, self.state["step"], self.state["best_step"], best, self.state["last_metrics"], reason)

    def _stop_reason(self) -> str | None:
        reason = _should_stop(self.state, self.total_steps, self.budget_s, self.cfg)
        if self.world > 1:  # rank 0 decides (time budgets differ between processes)
            flag = torch.tensor([1 if reason else 0])
            dist.broadcast(flag, 0)
            reason = reason or ("other rank" if flag.item() else None)
        return reason

    def _sample_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, data = self.cfg, self.data
        picks = data.train_idx[
            torch.multinomial(data.weights, cfg.batch_size, replacement=True, generator=self.generator).numpy()
        ]
        raw = torch.from_numpy(np.ascontiguousarray(data.cache.images[np.sort(picks)]))
        return _lab_batch(augment_batch(raw, cfg.size, self.generator, cfg.min_scale, cfg.max_rotation), self.device)

    def _step(self) -> tuple[float, dict]:
        """One optimisation step; returns the loss and its terms."""
        started = time.perf_counter()
        progress = max(
            self.state["step"] / self.total_steps if self.total_steps else 0.0,
            self.state["elapsed_s"] / self.budget_s if self.budget_s else 0.0,
        )
        factor = _lr_factor(self.state["step"], progress, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        lightness, ab = self._sample_batch()
        with autocast(self.device, self.precision):
            if self.uses_bins:
                pred, logits = self.net(_to_layout(lightness, self.device, self.precision), with_logits=True)
            else:
                pred, logits = self.net(_to_layout(lightness, self.device, self.precision)), None
        loss, parts = total_loss(self.cfg.loss_terms, pred, ab, lightness, getattr(self.model, "bins", None), logits)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {float(loss.detach())} at step {self.state['step'] + 1}; stopping. The last good checkpoint is "
                f"{self.run_dir / LAST} (resume from it with a lower --lr)."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.state["step"] += 1
        self.state["samples"] += self.cfg.batch_size * self.world
        self.state["elapsed_s"] += time.perf_counter() - started
        return float(loss.detach()), parts

    def _after_step(self, window: dict) -> None:
        state, cfg = self.state, self.cfg
        if self.is_main and state["step"] % cfg.log_every == 0:
            _log_window(self.log, window, state, self.optimizer, len(self.data.train_idx))
        if state["step"] % cfg.val_every == 0 or _should_stop(state, self.total_steps, self.budget_s, cfg):
            if self.is_main:
                self._validate_and_save()
            if self.world > 1:
                bad = torch.tensor([state["bad_validations"]])
                dist.broadcast(bad, 0)
                state["bad_validations"] = int(bad.item())

    def _validate_and_save(self) -> None:
        state, cfg = self.state, self.cfg
        weights_model = self.ema.module if self.ema is not None else self.model
        if len(self.data.val_images):
            metrics = validate(weights_model, self.data.val_images, self.device, self.precision)
            state["last_metrics"] = {**metrics, "step": state["step"]}
            self.log.append(
                {
                    "step": state["step"],
                    "samples": state["samples"],
                    "elapsed_s": round(state["elapsed_s"], 1),
                    "val_psnr": metrics["psnr"],
                    "val_ssim": metrics["ssim"],
                    "val_ciede2000": metrics["ciede2000"],
                    "val_colorfulness": metrics["colorfulness"],
                }
            )
            if _is_better(metrics, state["best_metric"], cfg.select_metric):
                state["best_metric"], state["best_step"], state["bad_validations"] = metrics[cfg.select_metric], state["step"], 0
                self._checkpoint(self.run_dir / BEST, weights_model, with_state=False)
            else:
                state["bad_validations"] += 1
        else:
            self._checkpoint(self.run_dir / BEST, weights_model, with_state=False)
        self._checkpoint(self.run_dir / LAST, self.model, with_state=True)
        self.log.plot(self.run_dir / "curves.png")

    def _checkpoint(self, path: Path, weights_model: torch.nn.Module, with_state: bool) -> None:
        state = self.state
        metadata = {
            "train_config": self.cfg.to_dict(),
            "data": self.data.summary,
            "metrics": state["last_metrics"],
            "step": state["step"],
            "samples": state["samples"],
            "train_time_s": round(state["elapsed_s"], 1),
            "device": str(self.device),
            "precision": self.precision,
            "world_size": self.world,
            "torch": str(torch.__version__),
            "chromafuse": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        training_state = _snapshot(state, self.optimizer, self.ema, self.generator) if with_state else None
        save_checkpoint(path, Checkpoint(self.cfg.arch, self.model_args, weights_model.state_dict(), metadata, training_state))


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Train a model as ``cfg`` says; with ``resume`` continue the run in ``cfg.out`` exactly."""
    return _Trainer(cfg, resume).run()


def _accumulate(window: dict, loss: float, parts: dict) -> None:
    window["loss"] += loss
    window["n"] += 1
    for name, value in parts.items():
        window["parts"][name] = window["parts"].get(name, 0.0) + value


def _should_stop(state: dict, total_steps: int | None, budget_s: float | None, cfg: TrainConfig) -> str | None:
    if total_steps is not None and state["step"] >= total_steps:
        return "steps"
    if budget_s is not None and state["elapsed_s"] >= budget_s:
        return "time budget"
    if cfg.patience and state["bad_validations"] >= cfg.patience:
        return "early stopping"
    return None


def _log_window(log: TrainLog, window: dict, state: dict, optimizer, train_images: int) -> None:
    now = time.perf_counter()
    n = max(window["n"], 1)
    row = {
        "step": state["step"],
        "epoch": round(state["samples"] / train_images, 3),
        "samples": state["samples"],
        "elapsed_s": round(state["elapsed_s"], 1),
        "lr": optimizer.param_groups[0]["lr"],
        "images_per_s": round((state["samples"] - window["samples0"]) / max(now - window["t0"], 1e-9), 2),
        "loss": window["loss"] / n,
        **{f"loss_{k}": v / n for k, v in window["parts"].items()},
    }
    log.append(row)
    window.update(loss=0.0, n=0, parts={}, t0=now, samples0=state["samples"])


def _snapshot(state: dict, optimizer, ema, generator) -> dict:
    return {
        **{k: v for k, v in state.items()},
        "optimizer": optimizer.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "rng_torch": torch.get_rng_state(),
        "rng_data": generator.get_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _restore(path: Path, model, optimizer, ema, generator, rank: int) -> dict:
    source = read_checkpoint(path)
    if source.training_state is None:
        raise ValueError(f"{path}: holds no training state to resume from")
    saved = source.training_state
    model.load_state_dict(source.state_dict, strict=True)
    optimizer.load_state_dict(saved["optimizer"])
    if ema is not None and saved.get("ema") is not None:
        ema.load_state_dict(saved["ema"])
    if rank == 0:  # other ranks keep their own seeded streams
        torch.set_rng_state(saved["rng_torch"])
        generator.set_state(saved["rng_data"])
        if saved.get("rng_cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["rng_cuda"])
    keys = ("step", "samples", "elapsed_s", "best_metric", "best_step", "bad_validations", "last_metrics")
    return {k: saved[k] for k in keys}


def _best_metrics(run_dir: Path) -> dict:
    best = run_dir / BEST
    return read_checkpoint(best).metadata.get("metrics", {}) if best.exists() else {}


def resume_config(run_dir: Path, **overrides) -> TrainConfig:
    """The stored config of the run in ``run_dir``, with stopping options replaced where given."""
    source = read_checkpoint(Path(run_dir) / LAST)
    cfg = TrainConfig.from_dict(source.metadata["train_config"])
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, out=Path(run_dir), **changes)
