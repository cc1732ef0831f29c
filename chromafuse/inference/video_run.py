"""One film through the Colorizer: frames decoded in a stream, their lightness batched through the model
(the same engine as photos, full-resolution L kept), the predicted ab steadied over time
(``temporal``), joined and encoded behind the model in a worker, audio and subtitles copied unchanged;
written to a hidden temporary file and renamed, so an interrupted run leaves nothing half-written.

Memory is bounded by the batch and the temporal window, not by the length of the film.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..color.fullres import join_small_ab, lightness_of, render_lightness
from ..guidance.guide import Guidance
from ..media.files import check_output_file
from ..media.video import CONTAINER_FORMATS, CRF_CODECS, Transcoder, VideoError, check_codec, default_codec, probe, temporary_path
from .plan import ColorizeOptions, FileResult
from .temporal import ChromaStabiliser, TemporalSettings

if TYPE_CHECKING:
    from .colorizer import Colorizer

FrameCallback = Callable[[str, int, int], None]  # (source, frames done, frames expected)


def _lightness(rgb: np.ndarray) -> np.ndarray:
    """Full-resolution L of a decoded frame; a gray frame (all three channels equal) by table lookup."""
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return lightness_of(np.ascontiguousarray(rgb[..., 0]))
    return lightness_of(rgb)


class _VideoPipeline:
    def __init__(
        self,
        colorizer: Colorizer,
        options: ColorizeOptions,
        transcoder: Transcoder,
        joiner: ThreadPoolExecutor,
        settings: TemporalSettings,
    ):
        self.colorizer, self.options, self.transcoder, self.joiner = colorizer, options, transcoder, joiner
        self.stabiliser = ChromaStabiliser(settings) if options.temporal else None
        self.frames: dict[int, tuple[int | None, object, np.ndarray]] = {}  # index -> (pts, time base, full L)
        self.batch: list[tuple[int, np.ndarray]] = []  # (index, render-size L)
        self.joining: deque[tuple[int, Future]] = deque()
        self.done = 0
        self.model_seconds = 0.0
        self.on_frame: Callable[[int], None] = lambda done: None

    def run(self) -> None:
        for index, frame in enumerate(self.transcoder.frames()):
            lightness = _lightness(frame.rgb)
            self.frames[index] = (frame.pts, frame.time_base, lightness)
            self.batch.append((index, render_lightness(lightness, self.colorizer.size, self.colorizer.detail)))
            if len(self.batch) >= self.options.batch_size:
                self._predict()
        self._predict()
        if self.stabiliser is not None:
            self._join(self.stabiliser.flush())
        self._drain(limit=0)

    def _predict(self) -> None:
        if not self.batch:
            return
        started = time.perf_counter()
        small = np.stack([small for _, small in self.batch])
        if self.options.reference is not None:  # one reference photo steers the whole film
            guidance = [Guidance(reference=self.options.reference)] * len(small)
            ab_small = self.colorizer.predict_guided(small, guidance, [small.shape[1:]] * len(small))
        else:
            ab_small = self.colorizer.predict_ab(small)
        self.model_seconds += time.perf_counter() - started
        for (index, small), ab in zip(self.batch, ab_small):
            self._join(self.stabiliser.push(index, small, ab) if self.stabiliser is not None else [(index, ab)])
        self.batch.clear()
        self._drain(limit=2 * self.options.workers)

    def _join(self, ready: list[tuple[int, np.ndarray]]) -> None:
        for index, ab in ready:
            lightness = self.frames[index][2]
            self.joining.append((index, self.joiner.submit(join_small_ab, lightness, ab, 8)))

    def _drain(self, limit: int) -> None:
        while len(self.joining) > limit:
            index, future = self.joining.popleft()
            pts, time_base, _ = self.frames.pop(index)
            self.transcoder.write(future.result(), pts, time_base)  # muxing stays on this thread
            self.done += 1
            self.on_frame(self.done)


def colorize_video(
    colorizer: Colorizer,
    source: Path,
    output: Path,
    options: ColorizeOptions = ColorizeOptions(),
    on_frames: FrameCallback | None = None,
    checked: bool = False,
    temporal: TemporalSettings = TemporalSettings(),
) -> FileResult:
    """Colorize one video file into ``output`` (the container its suffix names); failures raise VideoError
    with the file and the reason. ``checked``: the caller (a folder run) already refused overwrites and
    names the file itself."""
    source, output = Path(source), Path(output)
    if checked:
        return _colorize_video(colorizer, source, output, options, on_frames, temporal)
    check_output_file(output, "output", {source.resolve()}, options.overwrite)
    try:
        return _colorize_video(colorizer, source, output, options, on_frames, temporal)
    except VideoError as error:
        raise type(error)(f"{source}: {error}") from None


def _colorize_video(
    colorizer: Colorizer,
    source: Path,
    output: Path,
    options: ColorizeOptions,
    on_frames: FrameCallback | None,
    temporal: TemporalSettings,
) -> FileResult:
    started = time.perf_counter()
    container_format = CONTAINER_FORMATS.get(output.suffix.lower())
    if container_format is None:
        raise VideoError(f"{output}: a video is written as {', '.join(sorted(CONTAINER_FORMATS))}")
    if options.video_codec is not None:
        check_codec(options.video_codec)
    info = probe(source)
    if info.first_frame_is_color and options.skip_color:
        return FileResult(str(source), None, "skipped", "already in colour (--skip-color)", was_color=True)
    codec = options.video_codec or default_codec(output.suffix)
    temporary = temporary_path(output)
    transcoder = None
    try:
        transcoder = Transcoder(source, temporary, container_format, codec, options.crf, info)
        with ThreadPoolExecutor(1, thread_name_prefix="join") as joiner:
            pipeline = _VideoPipeline(colorizer, options, transcoder, joiner, temporal)
            if on_frames is not None:
                pipeline.on_frame = lambda done: on_frames(str(source), done, info.frames)
            pipeline.run()
        transcoder.close()
        os.chmod(temporary, 0o644)
        os.replace(temporary, output)
    except BaseException:
        if transcoder is not None:
            transcoder.abort()
        temporary.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - started
    result = FileResult(str(source), str(output), "done", seconds=round(seconds, 4), width=info.width, height=info.height)
    result.was_color = info.first_frame_is_color
    result.frames = pipeline.done
    result.notes += transcoder.notes
    steadied = f"{pipeline.stabiliser.cuts} scene cut(s)" if pipeline.stabiliser is not None else "temporal off"
    quality = f" crf {options.crf}" if codec in CRF_CODECS else ""
    copied = [s for s in info.other_streams if s.split()[0] in ("audio", "subtitle")]
    result.notes.append(
        f"video: {pipeline.done} frames at {pipeline.done / seconds:.1f} frames/s ({steadied}); {codec}{quality}; "
        + (f"copied unchanged: {', '.join(copied)}" if copied else "no audio")
    )
    if info.first_frame_is_color:
        result.notes.append("input is already in colour: colorized from its lightness")
    result.model_seconds = round(pipeline.model_seconds, 4)
    return result
