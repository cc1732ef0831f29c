"""A run's saved state: the checkpoints in its folder, what resuming restores, and the stored config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..models.checkpoint import read_checkpoint
from .config import TrainConfig

LAST, BEST = "last.ckpt", "best.ckpt"


def new_state() -> dict:
    """The counters a run starts from (and that resuming restores)."""
    return {
        "step": 0,
        "samples": 0,
        "elapsed_s": 0.0,
        "best_metric": None,
        "best_step": 0,
        "bad_validations": 0,
        "last_metrics": {},
    }


def snapshot(state: dict, optimizer, ema, generator, adversary=None) -> dict:
    return {
        **{k: v for k, v in state.items()},
        "optimizer": optimizer.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "adversary": adversary.state_dict() if adversary is not None else None,
        "rng_torch": torch.get_rng_state(),
        "rng_data": generator.get_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore(path: Path, model, optimizer, ema, generator, rank: int, adversary=None) -> dict:
    """Load everything ``snapshot`` saved into the run's objects; return its counters. A discriminator
    that the saved run did not have (the 'gan' loss added on resume) starts fresh."""
    source = read_checkpoint(path)
    if source.training_state is None:
        raise ValueError(f"{path}: holds no training state to resume from")
    saved = source.training_state
    model.load_state_dict(source.state_dict, strict=True)
    optimizer.load_state_dict(saved["optimizer"])
    if ema is not None and saved.get("ema") is not None:
        ema.load_state_dict(saved["ema"])
    if adversary is not None and saved.get("adversary") is not None:
        adversary.load_state_dict(saved["adversary"])
    if rank == 0:  # other ranks keep their own seeded streams
        torch.set_rng_state(saved["rng_torch"])
        generator.set_state(saved["rng_data"])
        if saved.get("rng_cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["rng_cuda"])
    return {k: saved[k] for k in new_state()}


def best_metrics(run_dir: Path) -> dict:
    best = run_dir / BEST
    return read_checkpoint(best).metadata.get("metrics", {}) if best.exists() else {}


def resume_config(run_dir: Path, **overrides) -> TrainConfig:
    """The stored config of the run in ``run_dir``, with the options given replaced: the stopping
    options, and the losses (a long campaign may change its method; the log records each term)."""
    source = read_checkpoint(Path(run_dir) / LAST)
    cfg = TrainConfig.from_dict(source.metadata["train_config"])
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, out=Path(run_dir), **changes)
