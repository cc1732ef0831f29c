"""Image files: listing, decoding (EXIF orientation, 8/16-bit, alpha, palette, CMYK) and atomic saving.

Pixels are decoded with OpenCV (it keeps 16-bit samples); Pillow reads only the header first,
to identify the format, refuse decompression bombs before any pixel is decoded, and find the
EXIF orientation.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 200_000_000
COLOR_SPREAD_8BIT = 2.0  # mean |R-G| or |G-B| above this (in 8-bit levels) means a colour photo

# EXIF orientation -> operations on the decoded array (OpenCV's IMREAD_UNCHANGED ignores EXIF).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
    8: lambda a: np.swapaxes(a, 0, 1)[::-1],
}


class ImageReadError(ValueError):
    """A file that cannot be used as an image; the message is the reason."""


class ImageTooLarge(ImageReadError):
    """An image refused for its pixel count, before its data is decoded."""


@dataclass
class DecodedImage:
    pixels: np.ndarray  # (H, W) gray or (H, W, 3) RGB, uint8 or uint16 as decoded
    alpha: np.ndarray | None  # (H, W) in the source dtype, or None
    bit_depth: int  # 8 or 16
    is_color: bool
    source_format: str
    notes: list[str] = field(default_factory=list)  # what the user should know, e.g. pages left out

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]

    def rgb8(self) -> np.ndarray:
        """The picture as RGB uint8 (H, W, 3)."""
        pixels = self.pixels if self.bit_depth == 8 else (self.pixels.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
        return np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels


def _header(source, max_pixels: int) -> tuple[str, str, int, bool, int]:
    """(format, mode, EXIF orientation, has a transparency chunk, frames) from the header alone (``source``: a file
    object or bytes); refuses bombs and non-images before their data is read."""
    import io

    if max_pixels > (Image.MAX_IMAGE_PIXELS or max_pixels):
        Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own bomb guard follows our limit (never lowered)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit decides, below
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
                width, height = image.size
                if width * height > max_pixels:  # before anything reads further into the file
                    raise ImageTooLarge(f"refused: {width}x{height} is over the limit of {max_pixels:,} pixels")
                fmt, mode = image.format or "unknown", image.mode
                orientation = image.getexif().get(0x0112, 1) if fmt in ("JPEG", "TIFF", "WEBP", "PNG") else 1
                transparency = "transparency" in image.info
                frames = getattr(image, "n_frames", 1)
        except ImageReadError:
            raise
        except Image.DecompressionBombError:
            raise ImageTooLarge("refused: too many pixels (decompression bomb?)") from None
        except UnidentifiedImageError:
            raise ImageReadError("not an image (unrecognised format)") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageReadError(f"unreadable image header: {error}") from None
    return fmt, mode, int(orientation) if isinstance(orientation, int) else 1, transparency, frames


def check_header(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise ImageReadError unless ``path`` starts like an image within the pixel limit (reads the header only)."""
    try:
        with open(path, "rb") as handle:
            _header(handle, max_pixels)
    except OSError as error:
        raise ImageReadError(f"cannot read file: {error.strerror or error}") from None


def oriented_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image as it is shown (EXIF rotations applied), from its header; (0, 0) if unreadable."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1) if image.format in ("JPEG", "TIFF", "WEBP", "PNG") else 1
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return 0, 0
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _check_complete(fmt: str, data: bytes) -> None:
    # OpenCV decodes a JPEG cut short without complaint (grey bottom rows); the end marker tells.
    if fmt == "JPEG" and b"\xff\xd9" not in data[-4096:]:
        raise ImageReadError("truncated JPEG (no end-of-image marker)")


def _split_channels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Decoded array -> (gray (H, W) or RGB (H, W, 3), alpha or None, bit depth), no float copy."""
    if array.dtype == np.uint8:
        depth = 8
    elif array.dtype == np.uint16:
        depth = 16
    else:
        raise ImageReadError(f"unsupported sample type {array.dtype} (only 8- and 16-bit images)")
    if array.ndim == 2:
        return array, None, depth
    channels = array.shape[2]
    if channels == 1:
        return array[..., 0], None, depth
    if channels == 2:  # gray + alpha
        return array[..., 0].copy(), array[..., 1].copy(), depth
    if channels == 3:
        return cv2.cvtColor(array, cv2.COLOR_BGR2RGB), None, depth
    if channels == 4:
        return cv2.cvtColor(array[..., :3], cv2.COLOR_BGR2RGB), array[..., 3].copy(), depth
    raise ImageReadError(f"unsupported channel count {channels}")


def color_spread(pixels: np.ndarray) -> float:
    """Mean channel difference in 8-bit levels, on a subsample (cheap on 40-megapixel scans)."""
    if pixels.ndim == 2:
        return 0.0
    step = max(1, int(np.sqrt(pixels.shape[0] * pixels.shape[1] / 250_000)))
    sample = pixels[::step, ::step].astype(np.float32) * (255.0 / np.iinfo(pixels.dtype).max)
    return max(float(np.abs(sample[..., 0] - sample[..., 1]).mean()), float(np.abs(sample[..., 1] - sample[..., 2]).mean()))


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode one file; raises ImageReadError with the reason when it is not a usable image."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise ImageReadError("empty file (0 bytes)")
            fmt, mode, orientation, transparency, frames = _header(handle, max_pixels)  # before reading the rest
            handle.seek(0)
            data = handle.read()
    except OSError as error:
        raise ImageReadError(f"cannot read file: {error.strerror or error}") from None
    return _decode(data, fmt, mode, orientation, transparency, frames)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode an image held in memory (an upload); raises ImageReadError (ImageTooLarge for the pixel limit)."""
    if not data:
        raise ImageReadError("empty file (0 bytes)")
    return _decode(data, *_header(data, max_pixels))


def _decode(data: bytes, fmt: str, mode: str, orientation: int, transparency: bool, frames: int) -> DecodedImage:
    _check_complete(fmt, data)
    if fmt == "JPEG":
        array = _decode_jpeg(data)
    elif mode in PILLOW_MODES or (transparency and mode in ("L", "RGB")):  # palette, CMYK, a tRNS chunk
        array = _decode_with_pillow(data)
    else:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ImageReadError(f"corrupt or truncated {fmt} data")
    if orientation in _ORIENT and not (fmt == "TIFF" and _opencv_orients_tiff()):
        array = np.ascontiguousarray(_ORIENT[orientation](array))
    pixels, alpha, depth = _split_channels(array)
    notes = [f"only the first of its {frames} pages (frames) was colorized"] if frames > 1 else []
    return DecodedImage(pixels, alpha, depth, color_spread(pixels) > COLOR_SPREAD_8BIT, fmt, notes)


@functools.lru_cache(maxsize=1)
def _opencv_orients_tiff() -> bool:
    """Whether this OpenCV applies a TIFF's orientation tag itself (OpenCV 5 does, with IMREAD_UNCHANGED):
    asked once of a 2x1 TIFF flipped left-right by its tag, so that orientation is applied exactly once."""
    import io

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 2
    Image.fromarray(np.array([[0, 255]], np.uint8)).save(buffer, format="TIFF", exif=exif)
    decoded = cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_UNCHANGED)
    return decoded is not None and int(decoded.reshape(-1)[0]) == 255


# Palette and CMYK images go through Pillow, which converts them to RGB(A) correctly.
PILLOW_MODES = {"P", "PA", "CMYK"}


def _decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG through Pillow, which fails on corrupt entropy-coded data where OpenCV returns gray rows."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode == "CMYK":
                image = image.convert("RGB")
            pixels = np.asarray(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"corrupt JPEG data ({error})") from None
    return pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)


def _decode_with_pillow(data: bytes) -> np.ndarray | None:
    import io

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"
            rgb = np.asarray(image.convert(mode))
    except (OSError, SyntaxError, ValueError):
        return None
    return cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR)


OUTPUT_EXTENSIONS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tiff"}


def encode_image(rgb: np.ndarray, alpha: np.ndarray | None, extension: str, quality: int) -> tuple[bytes, list[str]]:
    """RGB (uint8 or uint16) + optional alpha -> file bytes, and notes on anything dropped."""
    notes = []
    ext = extension.lower()
    if rgb.dtype == np.uint16 and ext not in (".png", ".tif", ".tiff"):
        rgb = (rgb.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
        alpha = None if alpha is None else (alpha.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
        notes.append(f"16-bit reduced to 8-bit ({ext} holds 8 bits)")
    if alpha is not None and ext in (".jpg", ".jpeg"):
        alpha = None
        notes.append("alpha dropped (JPEG has no alpha)")
    if alpha is not None and alpha.dtype != rgb.dtype:
        alpha = _match_depth(alpha, rgb.dtype)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if alpha is not None:
        bgr = np.dstack([bgr, alpha])
    params = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, quality]
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buffer = cv2.imencode(ext, bgr, params)
    if not ok:
        raise OSError(f"could not encode as {ext}")
    return buffer.tobytes(), notes


def _match_depth(alpha: np.ndarray, dtype) -> np.ndarray:
    if dtype == np.uint16:
        return alpha.astype(np.uint16) * 257
    return (alpha.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
