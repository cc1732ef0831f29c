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

from .engine import Colorizer, gray_from_lightness, join_lab, lightness_of, render_lightness, to_uint8, upsample_ab
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

# A batch is flushed early once it holds this many full-resolution pixels (huge scans).
BATCH_PIXEL_BUDGET = 64_000_000
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
    lightness = lightness_of(image.pixels)
    image.pixels = image.pixels[:1, :1]  # only L is needed from here on: free the decoded pixels
    return image, lightness, render_lightness(lightness, size)


def _write(job: _Job, image: DecodedImage, lightness: np.ndarray, ab_small: np.ndarray, options: ColorizeOptions) -> list[str]:
    rgb = join_lab(lightness, upsample_ab(ab_small, *lightness.shape), image.bit_depth)
    data, notes = encode_image(rgb, image.alpha, job.output.suffix, options.quality)
    write_atomic(job.output, data)
    if job.compare is not None:
        strip = np.concatenate([gray_from_lightness(lightness, 8), to_uint8(rgb)], axis=1)
        write_atomic(job.compare, encode_image(strip, None, ".jpg", 90)[0])
    return notes


def _predict_with_retry(colorizer: Colorizer, small: np.ndarray, notes: list[str]) -> np.ndarray:
    """Predict a batch; on out-of-memory, halve the batch and say so."""
    try:
        return colorizer.predict_ab(small)
    except torch.cuda.OutOfMemoryError:  # the same class as torch.OutOfMemoryError
        if len(small) == 1:
            raise
        if colorizer.device.type == "cuda":
            torch.cuda.empty_cache()
        half = len(small) // 2
        notes.append(f"out of memory with a batch of {len(small)}: retried in batches of {half}")
        return np.concatenate(
            [_predict_with_retry(colorizer, small[:half], notes), _predict_with_retry(colorizer, small[half:], notes)]
        )


class _Pipeline:
    """Decode ahead (bounded), batch through the model, write behind (bounded), in input order."""

    def __init__(
        self,
        colorizer: Colorizer,
        options: ColorizeOptions,
        readers: ThreadPoolExecutor,
        writers: ThreadPoolExecutor,
        finish: Callable[[FileResult], None],
        on_note: Callable[[str], None] | None,
    ):
        self.colorizer, self.options, self.readers, self.writers = colorizer, options, readers, writers
        self.finish, self.on_note = finish, on_note
        self.pending: deque[tuple[_Job, float, Future]] = deque()
        self.writing: deque[tuple[FileResult, Future]] = deque()
        self.batch: list[tuple[_Job, float, DecodedImage, np.ndarray, np.ndarray]] = []

    def run(self, jobs: list[_Job]) -> None:
        queue = iter(jobs)
        self._refill(queue)
        while self.pending:
            job, t0, future = self.pending.popleft()
            self._refill(queue)
            self._take(job, t0, future)
        if self.batch:
            self._flush()
        self._drain_writes(limit=0)

    def cancel(self) -> None:
        for _, _, future in self.pending:
            future.cancel()

    def _refill(self, queue) -> None:
        while len(self.pending) < self.options.batch_size + self.options.workers:
            job = next(queue, None)
            if job is None:
                return
            future = self.readers.submit(_decode, job, self.colorizer.size, self.options.max_pixels)
            self.pending.append((job, time.perf_counter(), future))

    def _take(self, job: _Job, t0: float, future: Future) -> None:
        try:
            image, lightness, small = future.result()
        except ImageReadError as error:
            self.finish(FileResult(str(job.source), None, "failed", str(error), round(time.perf_counter() - t0, 4)))
            return
        if image.is_color and self.options.skip_color:
            self.finish(FileResult(str(job.source), None, "skipped", "already in colour (--skip-color)", was_color=True))
            return
        self.batch.append((job, t0, image, lightness, small))
        if len(self.batch) >= self.options.batch_size or sum(b[3].size for b in self.batch) >= BATCH_PIXEL_BUDGET:
            self._flush()

    def _flush(self) -> None:
        notes: list[str] = []
        ab_small = _predict_with_retry(self.colorizer, np.stack([b[4] for b in self.batch]), notes)
        for note in dict.fromkeys(notes):
            if self.on_note:
                self.on_note(note)
        for (job, t0, image, lightness, _), ab in zip(self.batch, ab_small):
            height, width = lightness.shape
            result = FileResult(
                str(job.source), str(job.output), "done", seconds=t0, width=width, height=height, was_color=image.is_color
            )
            if image.is_color:
                result.notes.append("input is already in colour: colorized from its lightness")
            self.writing.append((result, self.writers.submit(_write, job, image, lightness, ab, self.options)))
        self.batch.clear()
        self._drain_writes(limit=2 * self.options.workers)

    def _drain_writes(self, limit: int) -> None:
        while len(self.writing) > limit:
            result, future = self.writing.popleft()
            try:
                result.notes += future.result()
            except (OSError, ValueError) as error:
                result.status, result.reason, result.output = "failed", f"write failed: {error}", None
            result.seconds = round(time.perf_counter() - result.seconds, 4)  # seconds held the start time
            self.finish(result)


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

    def finish(result: FileResult) -> None:
        results.append(result)
        if on_result:
            on_result(result)

    for result in list(results):
        if on_result:
            on_result(result)
    started = time.perf_counter()
    with (
        ThreadPoolExecutor(options.workers, thread_name_prefix="decode") as readers,
        ThreadPoolExecutor(options.workers, thread_name_prefix="write") as writers,
    ):
        pipeline = _Pipeline(colorizer, options, readers, writers, finish, on_note)
        try:
            pipeline.run(jobs)
        except BaseException:
            pipeline.cancel()  # Ctrl-C: stop decoding; writes in flight finish atomically
            raise
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
