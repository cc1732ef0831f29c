"""``chromafuse serve``: options -> a Colorizer and limits -> the local web page."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from .options import err, fail


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind (default: this machine only)."),
    port: int = typer.Option(7860, min=1, max=65535, help="Port to listen on."),
    weights: Path | None = typer.Option(None, "--weights", "-w", help="Checkpoint to use (default: the bundled model)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("auto", help="auto, fp32, fp16 or bf16."),
    backend: str = typer.Option(
        "auto",
        help="auto, torch, onnx (ONNX Runtime) or openvino (OpenVINO, bf16 on AMX CPUs), the last two also for .onnx files from chromafuse export.",
    ),
    max_file_mb: int = typer.Option(50, help="Largest upload accepted, in MB."),
    max_megapixels: float = typer.Option(50.0, help="Largest image accepted, in megapixels."),
    max_batch: int = typer.Option(8, min=1, help="API: most concurrent requests in one forward pass (1: one at a time)."),
    batch_wait_ms: float = typer.Option(5.0, min=0.0, help="API: longest wait for a batch to fill, in milliseconds."),
    max_queue: int = typer.Option(16, min=1, help="API: requests held at a time; beyond it, 503 with Retry-After."),
) -> None:
    """Start a local web page and HTTP API: upload photos, click, compare, download; or POST /api/colorize."""
    from ..inference.colorizer import Colorizer, NoDefaultModelError
    from ..models.checkpoint import CheckpointError
    from ..serve.limits import ServeLimits
    from ..serve.page import missing_extra
    from ..serve.server import serve as run_server

    if (reason := missing_extra()) is not None:
        fail(reason)
    if max_file_mb < 1 or max_megapixels <= 0:
        fail("--max-file-mb must be >= 1 and --max-megapixels > 0")
    try:
        colorizer = Colorizer.load(weights, device, precision, backend=backend)
    except (ValueError, CheckpointError, NoDefaultModelError) as error:
        fail(str(error))
    limits = ServeLimits(max_file_mb=max_file_mb, max_pixels=int(max_megapixels * 1e6), max_queue=max_queue)
    try:
        run_server(
            colorizer,
            host,
            port,
            limits,
            max_batch,
            batch_wait_ms,
            announce=lambda line: err.print(escape(line), highlight=False),
        )
    except OSError as error:
        fail(f"cannot serve on {host}:{port}: {error}")
    except KeyboardInterrupt:
        err.print("stopped")
