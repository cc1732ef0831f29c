"""``chromafuse colorize``: options -> ColorizeOptions and a Colorizer -> a folder run with progress."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import fail


def colorize(
    inputs: list[str] = typer.Argument(..., help="Image and video files, folders or glob patterns."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder; the input tree is mirrored inside it."),
    weights: Path | None = typer.Option(None, "--weights", "-w", help="Checkpoint to use (default: the bundled model)."),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", help="Descend into sub-folders."),
    size: int | None = typer.Option(None, help="Render size in pixels (default: the model's)."),
    saturation: float | None = typer.Option(None, help="Chroma gain on the predicted colours (default: the model's, usually 1)."),
    detail: float | None = typer.Option(
        None, help="Finest input detail shown to the model, as a fraction of the render size (1 = all; default: the model's)."
    ),
    ext: str = typer.Option("same", help="Output format: same, png, jpg, webp or tiff."),
    quality: int = typer.Option(95, help="JPEG / WebP quality."),
    suffix: str = typer.Option("", help="Appended to each output file name, e.g. _color."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave outputs that exist (resume a run)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that exist."),
    skip_color: bool = typer.Option(False, "--skip-color", help="Leave inputs that are already in colour alone."),
    compare: bool = typer.Option(False, "--compare", help="Also write NAME-compare.jpg: grayscale | colorized."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", help="Photos (or film frames) per model call."),
    workers: int = typer.Option(2, help="Decode and encode threads."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("auto", help="auto, fp32, fp16 or bf16."),
    backend: str = typer.Option(
        "auto",
        help="auto, torch, onnx (ONNX Runtime) or openvino (OpenVINO, bf16 on AMX CPUs), the last two also for .onnx files from chromafuse export.",
    ),
    video_codec: str | None = typer.Option(
        None, "--video-codec", help="Videos: the encoder, e.g. libx265, libvpx-vp9 (default: libx264; VP9 in .webm)."
    ),
    crf: int = typer.Option(18, "--crf", help="Videos: constant quality, lower is better (x264/x265: 0-51; VP9/AV1: 0-63)."),
    temporal: str = typer.Option(
        "on", "--temporal", help="Videos: on steadies the colour over neighbouring frames; off, frame by frame."
    ),
    report: Path | None = typer.Option(None, "--report", help="Write a JSON manifest of every file here."),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="K/N: take only share K (from 0) of N, by a hash of each file's relative path; merge with report merge.",
    ),
    hints_file: Path | None = typer.Option(
        None, "--hints", help='JSON file: input name (or relative path) -> [{"x": 120, "y": 80, "color": "#b02a2a"}, ...].'
    ),
    hint: list[str] | None = typer.Option(
        None, "--hint", help="X,Y:#RRGGBB[:RADIUS], a colour hint in the input's pixels (repeatable; one input only)."
    ),
    reference: Path | None = typer.Option(
        None, "--reference", help="A colour photo whose colours steer every input (an album, a film reel)."
    ),
    jsonl: bool = typer.Option(False, "--jsonl", help="Print one JSON line per file (for scripts)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Colorize black-and-white photos and films at full resolution."""
    from ..guidance.cli_input import read_guidance
    from ..inference.colorizer import Colorizer, NoDefaultModelError
    from ..inference.plan import ColorizeOptions
    from ..inference.shards import parse_shard
    from ..models.checkpoint import CheckpointError
    from .progress import ColorizeReporter

    if temporal not in ("on", "off"):
        fail(f"--temporal {temporal!r}: expected on or off")
    try:
        hints, reference_hint = read_guidance(inputs, hints_file, hint or [], reference)
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
            report=report,
            video_codec=video_codec,
            crf=crf,
            temporal=temporal == "on",
            shard=parse_shard(shard) if shard is not None else None,
            hints=hints,
            reference=reference_hint,
        )
        guided = hints is not None or reference_hint is not None
        colorizer = Colorizer.load(weights, device, precision, size, saturation, backend, guided and weights is None, detail)
        reporter = ColorizeReporter(mode="jsonl" if jsonl else "quiet" if quiet else "rich")
        summary = reporter.run(colorizer, inputs, output, options)
    except (ValueError, CheckpointError, NoDefaultModelError) as error:
        fail(str(error))
    raise typer.Exit(1 if summary.count("failed") else 0)
