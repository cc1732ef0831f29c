"""Folder runs: decode ahead, batch through the model, write behind; then the films, one by one
(``video_run``).

Decoding (and the full-resolution lightness) runs in worker threads ahead of the model;
joining, encoding and atomic writing run in worker threads behind it. Both queues are bounded,
so memory stays flat however many files there are. The run takes any Colorizer; the Colorizer
never imports this module at load time.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..color.fullres import gray_from_lightness, join_small_ab, lightness_of, render_lightness, to_uint8
from ..media.files import write_atomic
from ..media.images import DecodedImage, ImageReadError, encode_image, read_image
from ..media.video import VideoError, check_codec
from .plan import ColorizeOptions, FileResult, Job, RunSummary, plan_jobs
from .video_run import FrameCallback, colorize_video

if TYPE_CHECKING:
    from .colorizer import Colorizer

# A batch is flushed early once it holds this many full-resolution pixels (huge scans).
BATCH_PIXEL_BUDGET = 64_000_000


def _decode(job: Job, size: int, detail: float, max_pixels: int) -> tuple[DecodedImage, np.ndarray, np.ndarray]:
    image = read_image(job.source, max_pixels)
    lightness = lightness_of(image.pixels)
    image.pixels = image.pixels[:1, :1]  # only L is needed from here on: free the decoded pixels
    return image, lightness, render_lightness(lightness, size, detail)


def _write(job: Job, image: DecodedImage, lightness: np.ndarray, ab_small: np.ndarray, options: ColorizeOptions) -> list[str]:
    rgb = join_small_ab(lightness, ab_small, image.bit_depth)
    data, notes = encode_image(rgb, image.alpha, job.output.suffix, options.quality)
    if job.compare is not None:  # first: an output on disk means its file is complete (--skip-existing trusts it)
        strip = np.concatenate([gray_from_lightness(lightness, 8), to_uint8(rgb)], axis=1)
        write_atomic(job.compare, encode_image(strip, None, ".jpg", 90)[0])
    write_atomic(job.output, data)
    return notes


def _predict_with_retry(
    colorizer: Colorizer, small: np.ndarray, notes: list[str], guidance: list, shapes: list[tuple[int, int]]
) -> np.ndarray:
    """Predict a batch (with each image's Guidance or None); on out-of-memory, halve the batch and say so."""
    try:
        return colorizer.predict_guided(small, guidance, shapes)
    except torch.cuda.OutOfMemoryError:  # the same class as torch.OutOfMemoryError
        if len(small) == 1:
            raise
        if colorizer.device.type == "cuda":
            torch.cuda.empty_cache()
        half = len(small) // 2
        notes.append(f"out of memory with a batch of {len(small)}: retried in batches of {half}")
        return np.concatenate(
            [
                _predict_with_retry(colorizer, small[:half], notes, guidance[:half], shapes[:half]),
                _predict_with_retry(colorizer, small[half:], notes, guidance[half:], shapes[half:]),
            ]
        )


def _guidance_note(guidance) -> str:
    parts = [f"{len(guidance.hints)} hint{'s' if len(guidance.hints) != 1 else ''}"] if guidance.hints else []
    return "guided: " + " and ".join(parts + (["the reference photo's colours"] if guidance.reference is not None else []))


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
        self.pending: deque[tuple[Job, float, Future]] = deque()
        self.writing: deque[tuple[FileResult, Future]] = deque()
        self.batch: list[tuple[Job, float, DecodedImage, np.ndarray, np.ndarray]] = []

    def run(self, jobs: list[Job]) -> None:
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
            future = self.readers.submit(_decode, job, self.colorizer.size, self.colorizer.detail, self.options.max_pixels)
            self.pending.append((job, time.perf_counter(), future))

    def _take(self, job: Job, t0: float, future: Future) -> None:
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
        small = np.stack([b[4] for b in self.batch])
        guidance, shapes = [b[0].guidance for b in self.batch], [b[3].shape for b in self.batch]
        ab_small = _predict_with_retry(self.colorizer, small, notes, guidance, shapes)
        for note in dict.fromkeys(notes):
            if self.on_note:
                self.on_note(note)
        for (job, t0, image, lightness, _), ab in zip(self.batch, ab_small):
            height, width = lightness.shape
            result = FileResult(
                str(job.source), str(job.output), "done", seconds=t0, width=width, height=height, was_color=image.is_color
            )
            result.notes += image.notes
            if job.guidance:
                result.notes.append(_guidance_note(job.guidance))
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
    on_frames: FrameCallback | None = None,
) -> RunSummary:
    """Colorize every image and video in ``inputs`` into ``out_dir``; failures are recorded, not raised.
    ``on_frames(source, frames done, frames expected)`` follows a film's progress."""
    jobs, results, listed = plan_jobs(inputs, Path(out_dir), options)
    films = [job for job in jobs if job.video]
    if films and options.video_codec is not None:
        check_codec(options.video_codec)  # a usage error, before any work

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
            pipeline.run([job for job in jobs if not job.video])
        except BaseException:
            pipeline.cancel()  # Ctrl-C: stop decoding; writes in flight finish atomically
            raise
    for job in films:
        t0 = time.perf_counter()
        try:
            finish(colorize_video(colorizer, job.source, job.output, options, on_frames, checked=True))
        except (VideoError, OSError) as error:
            finish(FileResult(str(job.source), None, "failed", str(error), round(time.perf_counter() - t0, 4)))
    order = {str(j.source): i for i, j in enumerate(jobs)}
    results.sort(key=lambda r: order.get(r.input, -1))
    summary = RunSummary(
        results,
        time.perf_counter() - started,
        colorizer.name,
        str(colorizer.weights),
        colorizer.render_settings(),
        options.shard,
        listed,
    )
    if options.report is not None:
        write_atomic(options.report, json.dumps(summary.to_dict(), indent=2).encode())
    return summary
