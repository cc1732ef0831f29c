"""``train(config)``: folders of colour photos in, a colorization checkpoint out.

Runs on one CPU or GPU, or on several processes under ``torchrun`` (DistributedDataParallel;
rank 0 validates, logs and writes checkpoints). Resuming restores the model, optimiser, EMA,
schedule position and every random generator, so a step-based run that is interrupted and
resumed ends with the same weights as one that was not.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .. import __version__
from ..guidance.sampling import sample_hints
from ..models.checkpoint import Checkpoint, save_checkpoint
from ..models.device import autocast, resolve_precision, to_layout, uses_channels_last
from .config import TrainConfig
from .data import augment_batch, lab_batch, sharpen_lightness
from .log import TrainLog
from .losses import total_loss
from .setup import (
    build_model,
    count_total_steps,
    fit_colour_prior,
    lr_factor,
    make_ema,
    make_loss_networks,
    make_optimizer,
    prepare_data,
    setup_distributed,
)
from .state import BEST, LAST, best_metrics, new_state, restore, snapshot
from .validation import gray_baseline, is_better, validate


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


class _Trainer:
    """One training run: set up once, then ``run()`` steps until a stop condition."""

    def __init__(self, cfg: TrainConfig, resume: bool):
        self.cfg = cfg
        self.rank, self.world, self.device = setup_distributed(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.val_precision = resolve_precision(cfg.val_precision, self.device)
        self.is_main = self.rank == 0
        self.run_dir = Path(cfg.out)
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if not resume and (self.run_dir / LAST).exists():
                raise FileExistsError(
                    f"{self.run_dir} already holds a run ({LAST}); resume it with --resume or choose another --out"
                )
        torch.manual_seed(cfg.seed + self.rank)
        self.data = prepare_data(cfg, self.rank, self.world)
        self.val_baseline = gray_baseline(self.data.val_images) if len(self.data.val_images) else {}
        self.model, self.model_args, fresh = build_model(cfg)
        self.guided = bool(getattr(self.model, "guided", False))
        self.uses_bins = any(name == "bins" for name, _ in cfg.loss_terms)
        if self.uses_bins and getattr(self.model, "bins", None) is None:
            raise ValueError(f"the 'bins' loss needs a model with a bins head; {cfg.arch} here has none (--model-arg head=bins)")
        if not resume:
            fit_colour_prior(self.model, self.data, fresh)
        self.model.to(self.device)
        if uses_channels_last(self.device, self.precision):
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, cfg)
        self.ema = make_ema(self.model, cfg.ema_decay)
        self.networks = make_loss_networks(cfg, self.device, self.precision, self.world)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and self.precision == "fp16")
        self.generator = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank)
        self.state = new_state()
        if resume:
            self.state = restore(
                self.run_dir / LAST, self.model, self.optimizer, self.ema, self.generator, self.rank, self.networks.adversary
            )
        loss_names = [name for name, _ in cfg.loss_terms] + (["disc"] if self.networks.adversary else [])
        self.log = TrainLog(self.run_dir / "log.csv", loss_names, resume_step=self.state["step"]) if self.is_main else None
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids) if self.world > 1 else self.model
        self.total_steps = count_total_steps(cfg, len(self.data.train_idx), self.world)
        self.budget_s = cfg.time_budget_min * 60.0 if cfg.time_budget_min else None

    def run(self) -> TrainResult:
        from tqdm import tqdm  # here, so that the training pieces import on machines with only torch and OpenCV

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
        best = best_metrics(self.run_dir) if self.is_main else {}
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
        return lab_batch(augment_batch(raw, cfg.size, self.generator, cfg.min_scale, cfg.max_rotation), self.device)

    def _step(self) -> tuple[float, dict]:
        """One optimisation step; returns the loss and its terms."""
        started = time.perf_counter()
        progress = max(
            self.state["step"] / self.total_steps if self.total_steps else 0.0,
            self.state["elapsed_s"] / self.budget_s if self.budget_s else 0.0,
        )
        factor = lr_factor(self.state["step"], progress, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        lightness, ab = self._sample_batch()
        guidance = {}
        if self.guided:  # hints from the true colours, often none at all (see guidance.sampling)
            hints, reference = sample_hints(ab, self.generator)
            guidance = {"hints": to_layout(hints, self.device, self.precision), "reference": reference}
        seen = to_layout(sharpen_lightness(lightness, self.cfg.sharpen, self.generator), self.device, self.precision)
        with autocast(self.device, self.precision):
            if self.uses_bins:
                pred, logits = self.net(seen, **guidance, with_logits=True)
            else:
                pred, logits = self.net(seen, **guidance), None
        loss, parts = total_loss(
            self.cfg.loss_terms, pred, ab, lightness, getattr(self.model, "bins", None), logits, self.networks
        )
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
        if self.networks.adversary is not None:
            parts["disc"] = self.networks.adversary.step(lightness, pred.float(), ab, self.networks.autocast())
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
            metrics = validate(weights_model, self.data.val_images, self.device, self.val_precision, baseline=self.val_baseline)
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
                    "val_target": metrics["target"],
                    "val_frontier": metrics["frontier"],
                    "val_frontier_gain": metrics["frontier_gain"],
                }
            )
            if is_better(metrics, state["best_metric"], cfg.select_metric):
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
            # which weights the file holds: best.ckpt the averaged ones when EMA is on, last.ckpt the raw ones
            "weights": "ema" if self.ema is not None and weights_model is self.ema.module else "trained",
            "step": state["step"],
            "samples": state["samples"],
            "train_time_s": round(state["elapsed_s"], 1),
            "device": str(self.device),
            "precision": self.precision,
            "val_precision": self.val_precision,
            "world_size": self.world,
            "torch": str(torch.__version__),
            "chromafuse": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        training_state = (
            snapshot(state, self.optimizer, self.ema, self.generator, self.networks.adversary) if with_state else None
        )
        save_checkpoint(path, Checkpoint(self.cfg.arch, self.model_args, weights_model.state_dict(), metadata, training_state))


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Train a model as ``cfg`` says; with ``resume`` continue the run in ``cfg.out`` exactly."""
    owns_group = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    try:
        return _Trainer(cfg, resume).run()
    finally:
        if owns_group and dist.is_initialized():  # a process group left open can abort the interpreter at exit
            dist.destroy_process_group()


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
