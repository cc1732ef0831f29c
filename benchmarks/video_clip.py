"""Make a black-and-white test film with known motion, and measure how steady a colorized one is.

The film: photo A seen through a window that pans and zooms slowly (a known affine map per frame),
then a cut to photo B under a slow zoom; a 440 Hz tone on an AAC audio track and, where asked, an SRT
subtitle track. Because the motion is known, each output frame's ab can be warped back onto its photo's
canvas, and the frame-to-frame change of colour measured at corresponding points.

Used by tests/test_video.py and benchmarks/video_throughput.py; needs the video extra (PyAV).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import color, data


@dataclass
class Clip:
    path: Path
    maps: list[np.ndarray]  # per frame, the 2x3 affine map from frame pixels to its photo's pixels
    shot_of: list[int]  # per frame, which photo (0 or 1)
    canvas: list[tuple[int, int]]  # (height, width) of each photo
    cut_at: int  # index of the first frame of the second shot
    cuts: list[int]  # index of the first frame of every shot after the first
    fps: int
    size: tuple[int, int]  # (width, height)


def _photos() -> list[np.ndarray]:
    return [data.astronaut(), data.coffee()]


MOTIONS = [(0.004, (1.5, 0.6)), (0.012, (0.0, 0.0)), (0.006, (-1.0, 0.3)), (0.0, (0.8, -0.4))]  # (zoom/frame, pan px/frame)


def _window(t: float, photo_hw: tuple[int, int], size: tuple[int, int], zoom_rate: float, pan: tuple[float, float]) -> np.ndarray:
    """Frame pixel (x, y) -> photo pixel: a window of ``size`` scaled by 1 / zoom and moved by ``pan`` per frame."""
    height, width = photo_hw
    scale = 0.8 * min(width / size[0], height / size[1]) / (1.0 + zoom_rate * t)
    cx, cy = width / 2 + pan[0] * t, height / 2 + pan[1] * t
    return np.array([[scale, 0.0, cx - scale * size[0] / 2], [0.0, scale, cy - scale * size[1] / 2]], np.float32)


def make_clip(
    path: Path,
    size: tuple[int, int] = (192, 144),
    frames: tuple[int, int] = (24, 12),
    fps: int = 12,
    rotation: int = 0,
    subtitles: bool = False,
    photos: list[np.ndarray] | None = None,
) -> Clip:
    """Write the film (H.264 near-lossless, yuv420p; AAC tone; SRT subtitles in .mkv; VP9 and Opus in .webm) and return its known motion.

    ``photos`` (RGB arrays, default the astronaut and the coffee cup): one shot per photo, ``frames[i]`` frames long."""
    if subtitles and path.suffix.lower() != ".mkv":
        raise ValueError("SRT subtitles are written into .mkv clips only")
    path.parent.mkdir(parents=True, exist_ok=True)
    photos = [cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in (photos if photos is not None else _photos())]
    if len(frames) != len(photos):
        raise ValueError(f"{len(photos)} photos need {len(photos)} shot lengths, got {frames}")
    maps, shot_of = [], []
    with av.open(str(path), "w") as out:
        webm = path.suffix.lower() == ".webm"
        video = out.add_stream("libvpx-vp9" if webm else "libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.options = {"crf": "4", "b": "0"} if webm else {"crf": "4"}
        if rotation:
            video.set_display_rotation(rotation)
        audio = out.add_stream("libopus" if webm else "aac", rate=48000)
        audio.layout = "mono"
        subtitle_in = _subtitle_source(path, frames, fps) if subtitles else None
        subtitle = out.add_stream_from_template(subtitle_in.streams.subtitles[0]) if subtitle_in else None
        index = 0
        for shot, count in enumerate(frames):
            for t in range(count):
                matrix = _window(t, photos[shot].shape, size, *MOTIONS[shot % len(MOTIONS)])
                gray = cv2.warpAffine(photos[shot], matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
                frame = av.VideoFrame.from_ndarray(np.repeat(gray[..., None], 3, axis=2), format="rgb24")
                frame.pts = index
                index += 1
                out.mux(video.encode(frame))
                maps.append(matrix)
                shot_of.append(shot)
        out.mux(video.encode())
        seconds = sum(frames) / fps
        samples = (0.25 * np.sin(2 * np.pi * 440 * np.arange(int(48000 * seconds)) / 48000)).astype(np.float32)[None]
        for start in range(0, samples.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + 1024]), format="fltp", layout="mono"
            )
            chunk.sample_rate, chunk.pts = 48000, start
            out.mux(audio.encode(chunk))
        out.mux(audio.encode())
        if subtitle_in is not None:
            for packet in subtitle_in.demux(subtitle_in.streams.subtitles[0]):
                if packet.dts is not None:
                    packet.stream = subtitle
                    out.mux(packet)
            subtitle_in.close()
    cuts = [int(c) for c in np.cumsum(frames)[:-1]]
    return Clip(path, maps, shot_of, [p.shape for p in photos], frames[0], cuts, fps, size)


def _timestamp(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d},{millis % 1000:03d}"


def _subtitle_source(path: Path, frames: tuple[int, int], fps: int):
    srt = path.with_name(f".{path.stem}.srt")  # hidden: never listed as an input
    half, end = _timestamp(sum(frames) / fps / 2), _timestamp(sum(frames) / fps)
    srt.write_text(f"1\n{_timestamp(0)} --> {half}\nFirst shot\n\n2\n{half} --> {end}\nSecond shot\n")
    return av.open(str(srt))


def decode_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def stream_packets(path: Path, kind: str) -> list[tuple[int | None, bytes]]:
    """Every packet of the first stream of ``kind``: (pts, payload), for bit-exact comparison."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        return [(p.pts, bytes(p)) for p in container.demux(stream) if p.size]


def ab_on_canvas(rgb: np.ndarray, matrix: np.ndarray, canvas_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A frame's ab (scikit-image Lab) warped onto its photo's canvas, and where it is valid."""
    ab = color.rgb2lab(rgb)[..., 1:].astype(np.float32)
    height, width = canvas_hw
    warped = cv2.warpAffine(ab, matrix, (width, height), flags=cv2.INTER_LINEAR)
    # Colour flicker is broad; resampling a sharp edge at a new sub-pixel offset is not flicker: compare
    # colour blurred over a few pixels (sigma 8), away from the frame's edges.
    warped = cv2.GaussianBlur(warped, (0, 0), 8.0)
    valid = cv2.warpAffine(np.ones(rgb.shape[:2], np.float32), matrix, (width, height), flags=cv2.INTER_NEAREST)
    inner = cv2.erode((valid > 0.5).astype(np.uint8), np.ones((49, 49), np.uint8)) > 0
    return warped, inner


def frame_to_frame_change(frames: list[np.ndarray], clip: Clip) -> list[float]:
    """Mean |delta ab| between consecutive frames of the same shot, at corresponding points."""
    changes = []
    previous = None
    for index, rgb in enumerate(frames):
        shot = clip.shot_of[index]
        ab, valid = ab_on_canvas(rgb, clip.maps[index], clip.canvas[shot])
        if previous is not None and previous[0] == shot:
            both = valid & previous[2]
            changes.append(float(np.abs(ab[both] - previous[1][both]).sum(axis=-1).mean()))
        previous = (shot, ab, valid)
    return changes


def mean_ab(rgb: np.ndarray) -> np.ndarray:
    return color.rgb2lab(rgb)[..., 1:].reshape(-1, 2).mean(axis=0)
