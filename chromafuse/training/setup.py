"""What a training run builds before its first step: processes, data, model, optimiser, schedule."""

from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..color.lab import rgb_to_lab
from ..models import create_model, model_args_for
from ..models.checkpoint import read_checkpoint
from ..models.device import autocast, resolve_device
from .adversarial import Adversary
from .config import TrainConfig
from .data import ImageCache, build_cache, decode_squares, resize_batch, sampling_weights, split_indices, validation_sample
from .losses import LossNetworks
from .perceptual import PerceptualLoss


@dataclass
class RunData:
    cache: ImageCache
    train_idx: np.ndarray
    weights: torch.Tensor
    val_images: torch.Tensor  # (N, 3, val_size, val_size) float in [0, 1]
    summary: dict


def setup_distributed(device_name: str) -> tuple[int, int, torch.device]:
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


def prepare_data(cfg: TrainConfig, rank: int, world: int) -> RunData:
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
        val_idx = validation_sample(cache.files, val_idx, cfg.max_val_images, cfg.val_sample)
        same_scale = val_size == cfg.size
        val_source = cache.images[val_idx] if same_scale else decode_squares([cache.files[i] for i in val_idx], val_size)
    else:
        train_idx = np.arange(len(cache.files))
        val_source = val_cache.images[
            validation_sample(val_cache.files, np.arange(len(val_cache.files)), cfg.max_val_images, cfg.val_sample)
        ]
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
    return RunData(cache, train_idx, weights, val_images, summary)


def build_model(cfg: TrainConfig) -> tuple[torch.nn.Module, dict, set[str]]:
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


def fit_colour_prior(model: torch.nn.Module, data: RunData, fresh: set[str], samples: int = 2000, size: int = 64) -> None:
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


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with a lower rate for the pretrained backbone and a higher one for a guided model's hint inputs."""
    groups: dict[str, list] = {"rest": [], "backbone": [], "hints": []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            kind = "backbone" if name.startswith("encoder.") else "hints" if name.startswith("hint_inputs.") else "rest"
            groups[kind].append(param)
    scales = {"rest": 1.0, "backbone": cfg.backbone_lr_scale, "hints": cfg.hint_lr_scale}
    param_groups = [
        {"params": params, "lr": cfg.lr * scales[kind]} for kind, params in groups.items() if params or kind == "rest"
    ]
    for group in param_groups:
        group["base_lr"] = group["lr"]
    return torch.optim.AdamW(param_groups, weight_decay=cfg.weight_decay)


def lr_factor(step: int, progress: float, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def count_total_steps(cfg: TrainConfig, train_images: int, world: int) -> int | None:
    candidates = []
    if cfg.steps is not None:
        candidates.append(cfg.steps)
    if cfg.epochs is not None:
        candidates.append(math.ceil(cfg.epochs * train_images / (cfg.batch_size * world)))
    return min(candidates) if candidates else None


def make_loss_networks(cfg: TrainConfig, device: torch.device, precision: str, world: int) -> LossNetworks:
    """The perceptual network and the discriminator, where the configured losses use them."""
    names = {name for name, _ in cfg.loss_terms}
    if "gan" in names and world > 1:
        raise ValueError("the 'gan' loss trains its discriminator in one process; run it without torchrun")
    return LossNetworks(
        perceptual=PerceptualLoss().to(device) if "perceptual" in names else None,
        adversary=Adversary(device, lr=cfg.lr) if "gan" in names else None,
        autocast=functools.partial(autocast, device, precision),
    )


def make_ema(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of the weights (and buffers), or None when ``decay`` is 0."""
    if decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
