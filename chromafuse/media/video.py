"""Video files through PyAV (the ``video`` extra): probing, and one streaming transcode that decodes the
picture frame by frame, copies every audio and subtitle packet unchanged, and encodes the new picture
with the input's timestamps, frame rate and rotation.

Frames are yielded as RGB uint8 arrays in decode order; the caller writes the new pictures back with
the timestamps it was given, in the same order, as late as it likes (the muxer interleaves).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from .listing import VIDEO_EXTENSIONS, is_video_path  # noqa: F401  (re-exported: the video module's names)

CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
DEFAULT_CRF = 18
# Encoders that take a constant-quality factor, and the options that set it.
_CRF_OPTIONS = {
    "libx264": lambda crf: {"crf": str(crf)},
    "libx265": lambda crf: {"crf": str(crf), "x265-params": "log-level=error"},
    "libvpx-vp9": lambda crf: {"crf": str(crf), "b": "0"},
    "libsvtav1": lambda crf: {"crf": str(crf)},
}
CRF_CODECS = tuple(_CRF_OPTIONS)


class VideoError(ValueError):
    """A video that cannot be read or written; the message is the reason."""


class VideoExtraMissing(VideoError):
    pass


def video_extra_installed() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def _av(what: str = "reading a video"):
    try:
        import av
    except ImportError:
        raise VideoExtraMissing(f'{what} needs the video extra: pip install "chromafuse[video]"') from None
    av.logging.set_level(av.logging.PANIC)  # FFmpeg's own log names no file; failures are raised with the file and reason
    return av


def default_codec(suffix: str) -> str:
    """H.264 everywhere it can go; WebM holds VP9."""
    return "libvpx-vp9" if suffix.lower() == ".webm" else "libx264"


def check_codec(name: str) -> None:
    """Refuse, before any work, an encoder this FFmpeg build does not have."""
    av = _av(f"--video-codec {name}")
    try:
        codec = av.codec.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        raise VideoError(f"--video-codec {name!r}: no such encoder in this FFmpeg build") from None
    if codec.type != "video":
        raise VideoError(f"--video-codec {name!r}: is a {codec.type} encoder, not a video one")


@dataclass
class VideoInfo:
    width: int
    height: int
    frames: int  # from the container; an estimate from duration x rate where it does not say
    rate: Fraction
    duration_s: float
    rotation: int  # degrees counter-clockwise, as the display matrix says
    codec: str
    first_frame_is_color: bool
    other_streams: list[str] = field(default_factory=list)  # e.g. 'audio aac', 'subtitle mov_text'


def _open_input(path: Path):
    av = _av()
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise VideoError(f"cannot be read as a video ({_reason(error)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError("holds no video stream")
    return container


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.split(": '", 1)[0].strip() or type(error).__name__


def probe(path: Path) -> VideoInfo:
    """What the file holds, from its header and first frame."""
    av = _av()
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration = float(container.duration / 1_000_000) if container.duration else 0.0
        try:
            first = next(container.decode(stream))
        except (StopIteration, av.error.FFmpegError) as error:
            raise VideoError(f"its first frame cannot be decoded ({_reason(error) if str(error) else 'no frames'})") from None
        rgb = first.to_ndarray(format="rgb24")
        spread = float(
            np.abs(rgb[..., 0].astype(np.int16) - rgb[..., 1]).mean() + np.abs(rgb[..., 1].astype(np.int16) - rgb[..., 2]).mean()
        )
        frames = stream.frames or int(round(duration * float(rate)))
        others = [f"{s.type} {s.codec_context.name if s.codec_context else '?'}" for s in container.streams if s is not stream]
        return VideoInfo(
            first.width,
            first.height,
            frames,
            Fraction(rate),
            duration,
            first.rotation,
            stream.codec_context.name,
            spread > 4.0,
            others,
        )
    finally:
        container.close()


@dataclass
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8
    pts: int | None
    time_base: Fraction | None


class Transcoder:
    """Read ``source``, write ``target`` (a temporary file, of ``container_format``): ``frames()`` yields the
    decoded pictures while copying every audio and subtitle packet into the output; ``write()`` encodes a
    new picture with the timestamp it was read with; ``close()`` flushes. Streams of other kinds (data,
    attachments) are left out and listed in ``notes``."""

    def __init__(self, source: Path, target: Path, container_format: str, codec: str, crf: int | None, info: VideoInfo):
        av = self.av = _av()
        self.notes: list[str] = []
        self.source, self.target = source, target
        self.input = _open_input(source)
        try:
            self.output = av.open(str(target), "w", format=container_format)
        except (av.error.FFmpegError, OSError) as error:
            self.input.close()
            raise VideoError(f"{target}: cannot be written ({_reason(error)})") from None
        try:
            self._setup(codec, crf, info)
        except BaseException:
            self.abort()
            raise

    def _setup(self, codec: str, crf: int | None, info: VideoInfo) -> None:
        av = self.av
        self.video_in = self.input.streams.video[0]
        self.video_in.thread_type = "AUTO"
        self.video_out = self.output.add_stream(codec, rate=info.rate)
        self.video_out.width, self.video_out.height = info.width, info.height
        self.pix_fmt = "yuv420p" if info.width % 2 == 0 and info.height % 2 == 0 else "yuv444p"
        if self.pix_fmt != "yuv420p":
            self.notes.append(f"odd frame size {info.width}x{info.height}: encoded as yuv444p (4:2:0 needs even sizes)")
        supported = {f.name for f in (self.video_out.codec_context.codec.video_formats or [])}
        if supported and self.pix_fmt not in supported:
            self.pix_fmt = next(iter(sorted(supported)))
        self.video_out.pix_fmt = self.pix_fmt
        self.video_out.time_base = self.video_in.time_base
        context = self.video_out.codec_context
        context.colorspace, context.color_primaries, context.color_trc, context.color_range = 1, 1, 1, 1  # BT.709, limited range
        self.video_out.options = _CRF_OPTIONS[codec](crf) if codec in _CRF_OPTIONS and crf is not None else {}
        if crf is not None and codec not in _CRF_OPTIONS:
            self.notes.append(f"--crf applies to {', '.join(_CRF_OPTIONS)}: {codec} encoded with its own defaults")
        if info.rotation:
            self.video_out.set_display_rotation(info.rotation)  # before anything is muxed: the header holds it
        if self.video_in.metadata.get("language"):
            self.video_out.metadata["language"] = self.video_in.metadata["language"]
        self.copies = {}
        for stream in self.input.streams:
            if stream is self.video_in:
                continue
            if stream.type in ("audio", "subtitle"):
                try:
                    self.copies[stream.index] = self.output.add_stream_from_template(stream)
                except (av.error.FFmpegError, ValueError) as error:
                    raise VideoError(
                        f"its {stream.type} stream #{stream.index} ({stream.codec_context.name}) cannot be copied into "
                        f"{self.target.suffix or 'this container'} ({_reason(error)})"
                    ) from None
            else:
                self.notes.append(f"{stream.type} stream #{stream.index} left out (only audio and subtitles are copied)")
        if len([s for s in self.input.streams if s.type == "video"]) > 1:
            self.notes.append("only the first video stream is colorized; the other video streams are left out")

    def frames(self) -> Iterator[Frame]:
        av = self.av
        wanted = [self.video_in, *(self.input.streams[i] for i in self.copies)]
        try:
            for packet in self.input.demux(wanted):
                if packet.stream.index in self.copies:
                    if packet.dts is None and packet.size == 0:
                        continue  # the demuxer's end-of-stream marker
                    packet.stream = self.copies[packet.stream.index]
                    self.output.mux(packet)
                    continue
                for frame in packet.decode():
                    yield Frame(frame.to_ndarray(format="rgb24"), frame.pts, frame.time_base)
        except av.error.FFmpegError as error:
            raise VideoError(f"cannot be decoded past frame data ({_reason(error)})") from None

    def write(self, rgb: np.ndarray, pts: int | None, time_base: Fraction | None) -> None:
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
        frame.pts, frame.time_base = pts, time_base
        try:
            for packet in self.video_out.encode(frame):
                self.output.mux(packet)
        except self.av.error.FFmpegError as error:
            raise VideoError(f"its colorized frames cannot be encoded ({_reason(error)})") from None

    def close(self) -> None:
        try:
            for packet in self.video_out.encode():
                self.output.mux(packet)
            self.output.close()
        except self.av.error.FFmpegError as error:
            raise VideoError(f"the colorized film cannot be finished ({_reason(error)})") from None
        self.input.close()

    def abort(self) -> None:
        for container in (self.output, self.input):
            try:
                container.close()
            except Exception:  # closing after a failure: the temporary file is removed next
                pass


def temporary_path(target: Path) -> Path:
    """A hidden temporary name beside ``target`` (the caller renames it into place or removes it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    return Path(name)
