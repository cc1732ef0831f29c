"""Folder runs: plan outputs, decode ahead, batch through the model, write behind.

Decoding (and the full-resolution lightness) runs in worker threads ahead of the model;
joining, encoding and atomic writing run in worker threads behind it. Both queues are bounded,
so memory stays flat however many files there are.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .engine import Colorizer, join_lab, lightness_of, render_lightness, to_dtype, upsample_ab
from .images import (
    DEFAULT_MAX_PIXELS,
    OUTPUT_EXTENSIONS,
    DecodedImage,
    ImageReadError,
    encode_image,
    expand_inputs,
    read_image,
    write_atomic,
)

WRITABLE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}


@dataclass(frozen=True)
class ColorizeOptions:
    recursive: bool = True
    ext: str = "same"
    quality: int = 95
    suffix: str = ""
    skip_existing: bool = False
    overwrite: bool = False
    skip_color: bool = False
    compare: bool = False
    batch_size: int = 8
    workers: int = 2
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self):
        if self.ext not in ("same", *OUTPUT_EXTENSIONS):
            raise ValueError(f"--ext must be same, {', '.join(OUTPUT_EXTENSIONS)}; got {self.ext!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"--quality must be in 1..100, got {self.quality}")
        if self.batch_size < 1 or self.workers < 1:
            raise ValueError("--batch-size and --workers must be at least 1")
        if self.skip_existing and self.overwrite:
            raise ValueError("--skip-existing and --overwrite contradict each other: choose one")
        if "/" in self.suffix or "\\" in self.suffix:
            raise ValueError(f"--suffix must not contain a path separator, got {self.suffix!r}")


@dataclass
class FileResult:
    input: str
    output: str | None
    status: str  # done, skipped or failed
    reason: str = ""
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    was_color: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class RunSummary:
    results: list[FileResult]
    seconds: float
    model: str
    weights: str
    device: str
    precision: str
    size: int

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def images_per_s(self) -> float:
        return self.count("done") / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "weights": self.weights,
            "device": self.device,
            "precision": self.precision,
            "render_size": self.size,
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.images_per_s, 3),
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "files": [asdict(r) for r in self.results],
        }


@dataclass
class _Job:
    source: Path
    output: Path
    compare: Path | None


def output_path(relative: Path, out_dir: Path, options: ColorizeOptions) -> Path:
    suffix = relative.suffix if options.ext == "same" else OUTPUT_EXTENSIONS[options.ext]
    if suffix.lower() not in WRITABLE_SUFFIXES:
        suffix = ".png"  # e.g. a file given directly with an unusual extension
    return out_dir / relative.parent / f"{relative.stem}{options.suffix}{suffix}"


def plan_jobs(inputs: list[str], out_dir: Path, options: ColorizeOptions) -> tuple[list[_Job], list[FileResult]]:
    """Map inputs to outputs and refuse, before any work, collisions and overwrites."""
    pairs = expand_inputs(inputs, options.recursive)
    if not pairs:
        raise ValueError(f"no image files found in {', '.join(inputs)}")
    sources = {p.resolve() for p, _ in pairs}
    jobs, skipped, claimed = [], [], {}
    for source, relative in pairs:
        output = output_path(relative, out_dir, options)
        compare = output.with_name(f"{output.stem}-compare.jpg") if options.compare else None
        for target in filter(None, (output, compare)):
            key = str(target.resolve()).casefold()
            if key in claimed and claimed[key] != source:
                raise ValueError(
                    f"{claimed[key]} and {source} would both be written to {target}; rename one or use --suffix/--ext"
                )
            claimed[key] = source
            if target.resolve() in sources:
                raise ValueError(f"{target} is an input file and would be overwritten; choose another output folder or --suffix")
        if output.exists() and options.skip_existing:
            skipped.append(FileResult(str(source), str(output), "skipped", "output exists (--skip-existing)"))
            continue
        jobs.append(_Job(source, output, compare))
    existing = [j.output for j in jobs if j.output.exists() or (j.compare and j.compare.exists())]
    if existing and not options.overwrite:
        raise ValueError(
            f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; "
            "pass --skip-existing to resume a run or --overwrite to replace them"
        )
    return jobs, skipped


def _decode(job: _Job, size: int, max_pixels: int) -> tuple[DecodedImage, np.ndarray, np.ndarray]:
    image = read_image(job.source, max_pixels)
    lightness = lightness_of(image.rgb)
    return image, lightness, render_lightness(lightness, size)


def _write(job: _Job, image: DecodedImage, lightness: np.ndarray, ab_small: np.ndarray, options: ColorizeOptions) -> list[str]:
    rgb = join_lab(lightness, upsample_ab(ab_small, *lightness.shape))
    data, notes = encode_image(to_dtype(rgb, image.bit_depth), image.alpha, job.output.suffix, options.quality)
    write_atomic(job.output, data)
    if job.compare is not None:
        gray = join_lab(lightness, np.zeros((*lightness.shape, 2), np.float32))
        strip = np.concatenate([to_dtype(gray, 8), to_dtype(rgb, 8)], axis=1)
        write_atomic(job.compare, encode_image(strip, None, ".jpg", 90)[0])
    return notes


def _predict_with_retry(colorizer: Colorizer, small: np.ndarray, notes: list[str]) -> np.ndarray:
    """Predict a batch; on out-of-memory, halve the batch and say so."""
    try:
        return colorizer.predict_ab(small)
    except torch.OutOfMemoryError:
        if len(small) == 1:
            raise
        if colorizer.device.type == "cuda":
            torch.cuda.empty_cache()
        half = len(small) // 2
        notes.append(f"out of memory with a batch of {len(small)}: retried in batches of {half}")
        return np.concatenate(
            [_predict_with_retry(colorizer, small[:half], notes), _predict_with_retry(colorizer, small[half:], notes)]
        )


def run_colorize(
    colorizer: Colorizer,
    inputs: list[str],
    out_dir: Path,
    options: ColorizeOptions,
    on_result: Callable[[FileResult], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> RunSummary:
    """Colorize every image in ``inputs`` into ``out_dir``; failures are recorded, not raised."""
    jobs, results = plan_jobs(inputs, Path(out_dir), options)
    for result in results:
        on_result and on_result(result)
    started = time.perf_counter()
    lookahead = max(2 * options.batch_size, 4)
    with (
        ThreadPoolExecutor(options.workers, thread_name_prefix="decode") as readers,
        ThreadPoolExecutor(options.workers, thread_name_prefix="write") as writers,
    ):
        pending: deque[tuple[_Job, float, Future]] = deque()
        writing: deque[tuple[FileResult, Future]] = deque()
        batch: list[tuple[_Job, float, DecodedImage, np.ndarray, np.ndarray]] = []
        queue = iter(jobs)

        def finish(result: FileResult) -> None:
            results.append(result)
            on_result and on_result(result)

        def drain_writes(limit: int) -> None:
            while len(writing) > limit:
                result, future = writing.popleft()
                try:
                    result.notes += future.result()
                except (OSError, ValueError) as error:
                    result.status, result.reason, result.output = "failed", f"write failed: {error}", None
                result.seconds = round(time.perf_counter() - result.seconds, 4)
                finish(result)

        def flush() -> None:
            notes: list[str] = []
            ab_small = _predict_with_retry(colorizer, np.stack([b[4] for b in batch]), notes)
            for note in dict.fromkeys(notes):
                on_note and on_note(note)
            for (job, t0, image, lightness, _), ab in zip(batch, ab_small):
                result = FileResult(
                    str(job.source),
                    str(job.output),
                    "done",
                    seconds=t0,
                    width=lightness.shape[1],
                    height=lightness.shape[0],
                    was_color=image.is_color,
                )
                if image.is_color:
                    result.notes.append("input is already in colour: colorized from its lightness")
                writing.append((result, writers.submit(_write, job, image, lightness, ab, options)))
            batch.clear()
            drain_writes(limit=2 * options.workers)

        def refill() -> None:
            while len(pending) < lookahead:
                job = next(queue, None)
                if job is None:
                    return
                pending.append((job, time.perf_counter(), readers.submit(_decode, job, colorizer.size, options.max_pixels)))

        refill()
        while pending:
            job, t0, future = pending.popleft()
            refill()
            try:
                image, lightness, small = future.result()
            except ImageReadError as error:
                finish(FileResult(str(job.source), None, "failed", str(error), round(time.perf_counter() - t0, 4)))
                continue
            if image.is_color and options.skip_color:
                finish(FileResult(str(job.source), None, "skipped", "already in colour (--skip-color)", was_color=True))
                continue
            batch.append((job, t0, image, lightness, small))
            if len(batch) >= options.batch_size:
                flush()
        if batch:
            flush()
        drain_writes(limit=0)
    order = {str(j.source): i for i, j in enumerate(jobs)}
    results.sort(key=lambda r: order.get(r.input, -1))
    return RunSummary(
        results,
        time.perf_counter() - started,
        colorizer.name,
        str(colorizer.weights),
        str(colorizer.device),
        colorizer.precision,
        colorizer.size,
    )
