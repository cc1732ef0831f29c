"""The ``chromafuse`` command line: options in, one typed config, one call into the core."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Colorize black-and-white photos; train and evaluate colorizers."
)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"chromafuse {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Colorize black-and-white photos; train and evaluate colorizers."""


def _key_values(option: str, pairs: list[str], expected: str = "KEY=VALUE") -> dict[str, str]:
    """['a=1', 'b = x'] -> {'a': '1', 'b': 'x'}; a pair without '=' or a key is a usage error naming the option."""
    parsed = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            _fail(f"{option} {pair!r}: expected {expected}")
        parsed[key.strip()] = raw.strip()
    return parsed


def _parse_folder_weights(pairs: list[str]) -> dict[str, float]:
    """['bsds500=4', 'caltech101=0.5'] -> {'bsds500': 4.0, 'caltech101': 0.5}."""
    expected = "NAME=FACTOR with a number"
    parsed = {}
    for name, raw in _key_values("--folder-weight", pairs, expected).items():
        try:
            parsed[name] = float(raw)
        except ValueError:
            _fail(f"--folder-weight {f'{name}={raw}'!r}: expected {expected}")
    return parsed


def _parse_model_args(pairs: list[str]) -> dict:
    """['head=bins', 'temperature=0.4'] -> {'head': 'bins', 'temperature': 0.4} (numbers and booleans parsed)."""
    parsed: dict[str, object] = {}
    for key, raw in _key_values("--model-arg", pairs).items():
        value: object = raw
        for convert in (int, float):
            try:
                value = convert(raw)
                break
            except ValueError:
                pass
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        parsed[key] = value
    return parsed


@app.command()
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
    batch_size: int = typer.Option(16, "--batch-size", "-b"),
    steps: int | None = typer.Option(None, help="Stop after this many optimiser steps."),
    epochs: float | None = typer.Option(None, help="Stop after this many passes over the data."),
    time_budget: float | None = typer.Option(None, "--time-budget", help="Stop after this many minutes of training."),
    lr: float = typer.Option(5e-4, help="Peak learning rate (AdamW)."),
    warmup: int = typer.Option(200, help="Linear warm-up steps before the cosine decay."),
    losses: str = typer.Option("huber=1,ssim=0.1", help="Weighted loss terms: mse, l1, huber, ciede, ssim, colorfulness, bins."),
    ema: float = typer.Option(0.0, help="EMA decay of the weights (0 = off, e.g. 0.999)."),
    freeze_backbone: int = typer.Option(4, help="Freeze backbone blocks 0..N (-1 none, 15 all)."),
    folder_weight: list[str] = typer.Option(
        [], "--folder-weight", help="Sample a training folder more (or less) often, NAME=FACTOR (repeatable), e.g. bsds500=4."
    ),
    val_every: int = typer.Option(250, help="Validate and checkpoint every N steps."),
    patience: int = typer.Option(0, help="Stop after N validations without improvement (0 = never)."),
    select: str = typer.Option("psnr", help="Validation metric that picks best.ckpt: psnr, ssim or ciede2000."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this folder exactly."),
    init: Path | None = typer.Option(None, "--init", help="Start from these weights (fine-tuning)."),
    cache_dir: Path | None = typer.Option(None, help="Where decoded images are cached."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("auto", help="auto, fp32, fp16 or bf16."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a colorizer on folders of colour photos."""
    from .checkpoint import CheckpointError
    from .config import TrainConfig
    from .training import TrainingDiverged, resume_config
    from .training import train as run_training

    try:
        if resume is not None:
            cfg = resume_config(resume, steps=steps, epochs=epochs, time_budget_min=time_budget)
        else:
            if not data or out is None:
                _fail("give DATA folders and --out RUN_DIR (or --resume RUN_DIR)")
            cfg = TrainConfig(
                data_dirs=tuple(data),
                out=out,
                arch=arch,
                model_args=_parse_model_args(model_arg),
                val_dir=val,
                size=size,
                val_size=val_size,
                folder_weights=_parse_folder_weights(folder_weight),
                batch_size=batch_size,
                steps=steps,
                epochs=epochs,
                time_budget_min=time_budget,
                lr=lr,
                warmup_steps=warmup,
                losses=losses,
                ema_decay=ema,
                freeze_backbone=freeze_backbone,
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
        _fail(str(error))
    except TrainingDiverged as error:
        _fail(str(error), code=1)
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result.best_metrics.items() if k != "step")
    err.print(f"trained {result.steps} steps (stopped: {result.stopped_because}); best at step {result.best_step}: {metrics}")
    err.print(f"checkpoints in {escape(str(result.run_dir))}")


@app.command()
def colorize(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or glob patterns."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder; the input tree is mirrored inside it."),
    weights: Path | None = typer.Option(None, "--weights", "-w", help="Checkpoint to use (default: the bundled model)."),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", help="Descend into sub-folders."),
    size: int | None = typer.Option(None, help="Render size in pixels (default: the model's)."),
    saturation: float | None = typer.Option(None, help="Chroma gain on the predicted colours (default: the model's, usually 1)."),
    ext: str = typer.Option("same", help="Output format: same, png, jpg, webp or tiff."),
    quality: int = typer.Option(95, help="JPEG / WebP quality."),
    suffix: str = typer.Option("", help="Appended to each output file name, e.g. _color."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave outputs that exist (resume a run)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that exist."),
    skip_color: bool = typer.Option(False, "--skip-color", help="Leave inputs that are already in colour alone."),
    compare: bool = typer.Option(False, "--compare", help="Also write NAME-compare.jpg: grayscale | colorized."),
    batch_size: int = typer.Option(8, "--batch-size", "-b"),
    workers: int = typer.Option(2, help="Decode and encode threads."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("auto", help="auto, fp32, fp16 or bf16."),
    report: Path | None = typer.Option(None, "--report", help="Write a JSON manifest of every file here."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Print one JSON line per file (for scripts)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Colorize black-and-white photos at full resolution."""
    from .batch import ColorizeOptions
    from .checkpoint import CheckpointError
    from .engine import Colorizer, NoDefaultModelError
    from .progress import ColorizeReporter

    try:
        options = ColorizeOptions(
            recursive=recursive,
            ext=ext,
            quality=quality,
            suffix=suffix,
            skip_existing=skip_existing,
            overwrite=overwrite,
            skip_color=skip_color,
            compare=compare,
            batch_size=batch_size,
            workers=workers,
        )
        colorizer = Colorizer.load(weights, device=device, precision=precision, size=size, saturation=saturation)
        reporter = ColorizeReporter(mode="jsonl" if jsonl else "quiet" if quiet else "rich")
        summary = reporter.run(colorizer, inputs, output, options)
    except (ValueError, CheckpointError, NoDefaultModelError) as error:
        _fail(str(error))
    if report is not None:
        import json

        from .images import write_atomic

        write_atomic(report, json.dumps(summary.to_dict(), indent=2).encode())
    raise typer.Exit(1 if summary.count("failed") else 0)


@app.command()
def evaluate(
    reference: Path = typer.Argument(..., help="Folder of colour reference photos."),
    pred: Path | None = typer.Option(None, "--pred", help="Score existing outputs in this folder instead of colorizing."),
    weights: Path | None = typer.Option(None, "--weights", "-w", help="Checkpoint to evaluate (default: the bundled model)."),
    compare_weights: tuple[Path, Path] | None = typer.Option(
        None, "--compare-weights", help="Score two checkpoints side by side."
    ),
    protocol: str = typer.Option("native", help="native (full resolution) or 256 (references resized to 256x256)."),
    size: int | None = typer.Option(None, help="Render size in pixels (default: the model's)."),
    saturation: float | None = typer.Option(None, help="Chroma gain on the predicted colours (default: the model's)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write report.json, .csv, .md and .html here."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the JSON summary alone here."),
    junit_path: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
    min_psnr: float | None = typer.Option(None, help="Fail (exit 1) when mean PSNR is lower."),
    min_ssim: float | None = typer.Option(None, help="Fail when mean SSIM is lower."),
    max_mse: float | None = typer.Option(None, help="Fail when mean MSE is higher."),
    min_colorfulness: float | None = typer.Option(None, help="Fail when mean colourfulness is lower."),
    max_ciede2000: float | None = typer.Option(None, "--max-ciede2000", help="Fail when mean CIEDE2000 is higher."),
    batch_size: int = typer.Option(8, "--batch-size", "-b"),
    device: str = typer.Option("auto"),
    precision: str = typer.Option("auto"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Score colorizations against colour references (PSNR, SSIM, MSE, CIEDE2000, colourfulness)."""
    import json

    from .checkpoint import CheckpointError
    from .engine import NoDefaultModelError
    from .evaluate import EvaluateConfig, Thresholds
    from .evaluate import evaluate as run_evaluation
    from .images import write_atomic
    from .report import junit, markdown, summary_json, write_reports

    if compare_weights and weights:
        _fail("use either --weights or --compare-weights, not both")
    try:
        thresholds = Thresholds(min_psnr, min_ssim, max_mse, min_colorfulness, max_ciede2000)
        cfg = EvaluateConfig(
            reference,
            pred,
            tuple(compare_weights) if compare_weights else (weights,),
            protocol,
            size,
            device,
            precision,
            batch_size,
            saturation=saturation,
            thresholds=thresholds,
            progress=not quiet,
        )
        result = run_evaluation(cfg)
    except (ValueError, CheckpointError, NoDefaultModelError) as error:
        _fail(str(error))
    if not result.primary.rows:
        _fail(f"no image could be scored in {reference}: " + "; ".join(result.problems[:3]))
    if out is not None:
        write_reports(result, out)
    if json_path is not None:
        write_atomic(json_path, json.dumps(summary_json(result), indent=2).encode())
    misses = thresholds.misses(result.primary.summary())
    if junit_path is not None:
        write_atomic(junit_path, junit(result, misses).encode())
    if not quiet:
        typer.echo(markdown(result))
    for extra in result.extra:
        err.print(f"[yellow]warning[/] extra prediction without a reference: {escape(str(extra))}", highlight=False)
    for line in result.problems + misses:
        err.print(f"[red]fail[/] {escape(line)}", highlight=False)
    raise typer.Exit(1 if misses or result.problems else 0)


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (e.g. RUN/best.ckpt)."),
    target: Path = typer.Argument(..., help="Where to write the small inference checkpoint."),
    fp32: bool = typer.Option(False, "--fp32", help="Keep fp32 weights (default: fp16, half the size)."),
    render_size: int | None = typer.Option(None, help="Default render size to record for colorize."),
    name: str | None = typer.Option(None, help="Model name to record."),
    saturation: float | None = typer.Option(None, help="Default chroma gain to record for colorize (1 = as predicted)."),
    temperature: float | None = typer.Option(None, help="Decoding temperature of a bins head (lower: more vivid)."),
    card: list[str] = typer.Option(
        [], "--card", metavar="KEY=TEXT", help="A model-card field to record in the file (repeatable), e.g. training=..."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace TARGET if it exists."),
) -> None:
    """Strip a checkpoint to its weights for shipping (no optimiser state; fp16 by default)."""
    from .checkpoint import CheckpointError, export_checkpoint

    if target.exists() and not overwrite:
        _fail(f"{target} exists; pass --overwrite to replace it")
    given = {"render_size": render_size, "saturation": saturation, "name": name}
    extra: dict[str, object] = {key: value for key, value in given.items() if value is not None}
    if card:
        extra["card"] = _key_values("--card", card, "KEY=TEXT")
    try:
        path = export_checkpoint(checkpoint, target, half=not fp32, temperature=temperature, **extra)
    except (ValueError, CheckpointError) as error:
        _fail(str(error))
    err.print(f"wrote {escape(str(path))} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind (default: this machine only)."),
    port: int = typer.Option(7860, help="Port to listen on."),
    weights: Path | None = typer.Option(None, "--weights", "-w", help="Checkpoint to use (default: the bundled model)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("auto", help="auto, fp32, fp16 or bf16."),
    max_file_mb: int = typer.Option(50, help="Largest upload accepted, in MB."),
    max_megapixels: float = typer.Option(50.0, help="Largest image accepted, in megapixels."),
) -> None:
    """Start a local web page: upload photos, click, compare before and after, download."""
    from .checkpoint import CheckpointError
    from .engine import Colorizer, NoDefaultModelError
    from .serve import ServeLimits, missing_extra
    from .serve import serve as run_server

    if (reason := missing_extra()) is not None:
        _fail(reason)
    if max_file_mb < 1 or max_megapixels <= 0:
        _fail("--max-file-mb must be >= 1 and --max-megapixels > 0")
    try:
        colorizer = Colorizer.load(weights, device, precision)
    except (ValueError, CheckpointError, NoDefaultModelError) as error:
        _fail(str(error))
    limits = ServeLimits(max_file_mb=max_file_mb, max_pixels=int(max_megapixels * 1e6))
    try:
        run_server(colorizer, host, port, limits, announce=lambda line: err.print(line, highlight=False))
    except OSError as error:
        _fail(f"cannot serve on {host}:{port}: {error}")
    except KeyboardInterrupt:
        err.print("stopped")


@app.command()
def models() -> None:
    """List the registered model architectures."""
    from .models import list_models, model_spec

    for name in list_models():
        typer.echo(f"{name:10s} {model_spec(name).description}")


def main() -> None:
    app()
