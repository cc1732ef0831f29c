"""``chromafuse export`` and ``chromafuse models``: model files and the architectures they hold."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from .options import err, fail, key_values


def export(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (e.g. RUN/best.ckpt)."),
    target: Path = typer.Argument(..., help="Where to write the small inference checkpoint (.pt), or an ONNX model (.onnx)."),
    fp32: bool = typer.Option(False, "--fp32", help="Keep fp32 weights (default: fp16, half the size)."),
    render_size: int | None = typer.Option(None, help="Default render size to record for colorize."),
    name: str | None = typer.Option(None, help="Model name to record."),
    saturation: str | None = typer.Option(
        None,
        help="Default chroma gain to record for colorize (1 = as predicted), or 'frontier': the gain the checkpoint's "
        "validation found best (train --select frontier).",
    ),
    detail: float | None = typer.Option(
        None, help="Finest input detail to record for colorize, as a fraction of the render size (1 = all; e.g. 0.8)."
    ),
    temperature: float | None = typer.Option(None, help="Decoding temperature of a bins head (lower: more vivid)."),
    ema: bool | None = typer.Option(
        None,
        "--ema/--no-ema",
        help="Export the averaged (EMA) weights a run's last.ckpt keeps, the ones its validation scored "
        "(default: those when it keeps them), or its raw weights.",
    ),
    card: list[str] = typer.Option(
        [], "--card", metavar="KEY=TEXT", help="A model-card field to record in the file (repeatable), e.g. training=..."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace TARGET if it exists."),
) -> None:
    """Strip a checkpoint to its weights for shipping (no optimiser state; fp16 by default)."""
    from ..media.files import check_output_file
    from ..models.checkpoint import CheckpointError, prepare_export, save_checkpoint

    try:
        check_output_file(target, "export", {checkpoint.resolve()}, overwrite)
    except ValueError as error:
        fail(str(error))
    if saturation is not None and saturation != "frontier":
        try:
            saturation = float(saturation)
        except ValueError:
            fail(f"--saturation must be a number or 'frontier', got {saturation!r}")
    given = {"render_size": render_size, "saturation": saturation, "detail": detail, "name": name}
    extra: dict[str, object] = {key: value for key, value in given.items() if value is not None}
    if card:
        extra["card"] = key_values("--card", card, "KEY=TEXT")
    try:
        prepared = prepare_export(checkpoint, target, temperature, ema, **extra)
        if target.suffix.lower() == ".onnx":  # ONNX Runtime's format: fp32, checked against torch first
            from ..models.onnx_export import export_onnx

            path, difference = export_onnx(prepared, target, str(checkpoint))
            err.print(f"checked against torch on 4 photos: largest ab difference {difference:.2g}")
        else:
            path = Path(target)
            save_checkpoint(path, prepared, half=not fp32)
    except (ValueError, CheckpointError) as error:
        fail(str(error))
    weights = "its averaged (EMA) weights" if prepared.metadata["weights"] == "ema" else "its weights"
    gain = prepared.metadata.get("saturation")
    recorded = f", saturation {gain:g} recorded" if gain is not None else ""
    err.print(f"wrote {escape(str(path))} ({path.stat().st_size / 1e6:.1f} MB): {weights}{recorded}")


def models() -> None:
    """List the registered model architectures."""
    from ..models import list_models, model_spec

    for name in list_models():
        typer.echo(f"{name:10s} {model_spec(name).description}")
