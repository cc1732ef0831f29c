"""``chromafuse evaluate``: options -> an EvaluateConfig -> scores, reports and CI gates."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from .options import err, fail


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
    detail: float | None = typer.Option(
        None, help="Finest input detail shown to the model, as a fraction of the render size (1 = all; default: the model's)."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write report.json, .csv, .md and .html here."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the JSON summary alone here."),
    junit_path: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace report files that exist."),
    min_psnr: float | None = typer.Option(None, help="Fail (exit 1) when mean PSNR is lower."),
    min_ssim: float | None = typer.Option(None, help="Fail when mean SSIM is lower."),
    max_mse: float | None = typer.Option(None, help="Fail when mean MSE is higher."),
    min_colorfulness: float | None = typer.Option(None, help="Fail when mean colourfulness is lower."),
    max_ciede2000: float | None = typer.Option(None, "--max-ciede2000", help="Fail when mean CIEDE2000 is higher."),
    hints_from_truth: int = typer.Option(
        0, "--hints-from-truth", help="Guided: N colour hints per image taken from its reference (fixed seed)."
    ),
    reference_from_truth: bool = typer.Option(
        False, "--reference-from-truth", help="Guided: each reference photo steers its own colorization as a reference."
    ),
    seed: int = typer.Option(0, help="Seed of --hints-from-truth."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", help="Photos per model call."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("auto", help="auto, fp32, fp16 or bf16."),
    backend: str = typer.Option(
        "auto",
        help="auto, torch, onnx (ONNX Runtime) or openvino (OpenVINO, bf16 on AMX CPUs), the last two also for .onnx files from chromafuse export.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no table; warnings and failures still print."),
) -> None:
    """Score colorizations against colour references (PSNR, SSIM, MSE, CIEDE2000, colourfulness)."""
    import json

    from ..evaluation.report import check_report_paths, junit, markdown, summary_json, write_reports
    from ..evaluation.runner import EvaluateConfig, Thresholds
    from ..evaluation.runner import evaluate as run_evaluation
    from ..inference.colorizer import NoDefaultModelError
    from ..media.files import write_atomic
    from ..models.checkpoint import CheckpointError

    if compare_weights and weights:
        fail("use either --weights or --compare-weights, not both")
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
            detail=detail,
            backend=backend,
            hints_from_truth=hints_from_truth,
            reference_from_truth=reference_from_truth,
            seed=seed,
            thresholds=thresholds,
            progress=not quiet,
        )
        check_report_paths([reference, pred], out, json_path, junit_path, overwrite)
        result = run_evaluation(cfg)
    except (ValueError, CheckpointError, NoDefaultModelError) as error:
        fail(str(error))
    if not result.primary.rows:
        fail(f"no image could be scored in {reference}: " + "; ".join(result.problems[:3]))
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
