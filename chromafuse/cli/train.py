"""``chromafuse train``: training options -> a TrainConfig -> ``training.train``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from .options import err, fail, parse_folder_weights, parse_model_args


def train(
    data: list[Path] = typer.Argument(None, help="Folders of colour photos (searched recursively)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run folder for checkpoints, log.csv and curves.png."),
    arch: str = typer.Option("fusion-s", help="Model architecture (see `chromafuse models`)."),
    model_arg: list[str] = typer.Option(
        [], "--model-arg", help="Override a model constructor argument, KEY=VALUE (repeatable), e.g. head=bins."
    ),
    val: Path | None = typer.Option(None, "--val", help="Validation folder (default: a hash split of DATA)."),
    size: int = typer.Option(128, help="Training crop size in pixels."),
    val_size: int | None = typer.Option(
        None, "--val-size", help="Validation render size (default: --size), e.g. 256 as colorize renders."
    ),
    val_sample: str = typer.Option(
        "spread",
        "--val-sample",
        help="Which photos of the validation split (at most 256) are scored: spread (every folder in proportion) or first (in path order).",
    ),
    val_precision: str = typer.Option(
        "fp32",
        "--val-precision",
        help="Precision of validation: fp32 (the same figures on every machine, as `evaluate --precision fp32` scores) or auto/bf16/fp16 (faster, as training runs).",
    ),
    batch_size: int = typer.Option(16, "--batch-size", "-b", help="Training crops per optimisation step."),
    steps: int | None = typer.Option(None, help="Stop after this many optimiser steps."),
    epochs: float | None = typer.Option(None, help="Stop after this many passes over the data."),
    time_budget: float | None = typer.Option(None, "--time-budget", help="Stop after this many minutes of training."),
    lr: float = typer.Option(5e-4, help="Peak learning rate (AdamW)."),
    warmup: int = typer.Option(200, help="Linear warm-up steps before the cosine decay."),
    losses: str | None = typer.Option(
        None,
        help="Weighted loss terms (default huber=1,ssim=0.1): mse, l1, huber, ciede, ssim, colorfulness, spread, cast, bins, "
        "perceptual, gan. With --resume: the run goes on with these losses.",
    ),
    ema: float = typer.Option(0.0, help="EMA decay of the weights (0 = off, e.g. 0.999)."),
    freeze_backbone: int = typer.Option(4, help="Freeze backbone blocks 0..N (-1 none, 15 all)."),
    folder_weight: list[str] = typer.Option(
        [], "--folder-weight", help="Sample a training folder more (or less) often, NAME=FACTOR (repeatable), e.g. bsds500=4."
    ),
    sharpen: float = typer.Option(
        0.0, help="Show the model crisper edges: unsharp-mask its input by up to this amount per crop (0 = off, e.g. 1.0)."
    ),
    val_every: int = typer.Option(250, help="Validate and checkpoint every N steps."),
    patience: int = typer.Option(0, help="Stop after N validations without improvement (0 = never)."),
    select: str = typer.Option(
        "psnr",
        help="Validation metric that picks best.ckpt: psnr, ssim, ciede2000, target (vivid and accurate at once: the smallest margin to the default-model targets), or frontier (the best target score a render gain, --saturation, reaches; logged with its gain).",
    ),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this folder exactly."),
    init: Path | None = typer.Option(None, "--init", help="Start from these weights (fine-tuning)."),
    cache_dir: Path | None = typer.Option(None, help="Where decoded images are cached."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("auto", help="auto, fp32, fp16 or bf16."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a colorizer on folders of colour photos."""
    from ..models.checkpoint import CheckpointError
    from ..training import TrainingDiverged, resume_config
    from ..training import train as run_training
    from ..training.config import TrainConfig

    try:
        if resume is not None:
            cfg = resume_config(resume, steps=steps, epochs=epochs, time_budget_min=time_budget, losses=losses)
        else:
            if not data or out is None:
                fail("give DATA folders and --out RUN_DIR (or --resume RUN_DIR)")
            cfg = TrainConfig(
                data_dirs=tuple(data),
                out=out,
                arch=arch,
                model_args=parse_model_args(model_arg),
                val_dir=val,
                size=size,
                val_size=val_size,
                val_sample=val_sample,
                val_precision=val_precision,
                folder_weights=parse_folder_weights(folder_weight),
                batch_size=batch_size,
                steps=steps,
                epochs=epochs,
                time_budget_min=time_budget,
                lr=lr,
                warmup_steps=warmup,
                losses=losses or "huber=1,ssim=0.1",
                ema_decay=ema,
                freeze_backbone=freeze_backbone,
                sharpen=sharpen,
                val_every=val_every,
                patience=patience,
                select_metric=select,
                init=init,
                cache_dir=cache_dir,
                seed=seed,
                device=device,
                precision=precision,
                progress=not quiet,
            )
        result = run_training(cfg, resume=resume is not None)
    except (ValueError, FileExistsError, CheckpointError) as error:
        fail(str(error))
    except TrainingDiverged as error:
        fail(str(error), code=1)
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result.best_metrics.items() if k != "step")
    err.print(f"trained {result.steps} steps (stopped: {result.stopped_because}); best at step {result.best_step}: {metrics}")
    err.print(f"checkpoints in {escape(str(result.run_dir))}")
