"""The HTTP API beside the page: ``POST /api/colorize``, ``GET /api/health``, ``GET /api/model``.

Routes of the same FastAPI app the page is mounted on. An upload is decoded in a worker thread, its
render-size lightness joins the dynamic batcher (concurrent requests share one forward pass), and the
full-resolution join and encode run in a worker thread again. Errors are JSON, ``{"error": ..., "status": ...}``:
400 a bad option, 413 too large (bytes or pixels), 415 not an image (saying what was found), 503 when the
queue is full (with ``Retry-After``). At most ``max_queue`` requests are held at a time, so memory is bounded
by the queue, not by the load.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import filetype
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ..color.fullres import join_small_ab, lightness_of, render_lightness
from ..guidance.guide import Guidance, load_reference
from ..guidance.hints import HintError, make_hint
from ..inference.batcher import DynamicBatcher, QueueFull
from ..inference.colorizer import Colorizer
from ..media.images import ImageReadError, ImageTooLarge, decode_image, encode_image
from ..models.checkpoint import check_render_settings
from .limits import ServeLimits

FORMATS = {
    "png": (".png", "image/png"),
    "jpeg": (".jpg", "image/jpeg"),
    "jpg": (".jpg", "image/jpeg"),
    "webp": (".webp", "image/webp"),
}
OPTIONS = ("image", "size", "saturation", "detail", "format", "quality", "hints", "reference")
RETRY_AFTER_S = 1


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse({"error": error.message, "status": error.status}, status_code=error.status, headers=error.headers)


def found_in(data: bytes) -> str:
    """What an upload that is not a usable image holds, in words."""
    if not data:
        return "an empty file (0 bytes)"
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return f"{kind.mime} data (.{kind.extension})"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return f"unrecognised binary data (starts {data[:8].hex(' ')})"
    return "text" if data.strip() else "nothing but whitespace"


def _option(form, name: str, parse, default):
    value = form.get(name)
    if value is None or value == "":
        return default
    try:
        return parse(value)
    except (TypeError, ValueError):
        raise ApiError(
            400, f"{name}={value!r}: expected {parse.__name__ if parse in (int, float) else 'a valid value'}"
        ) from None


def _options(colorizer: Colorizer, form) -> tuple[int, float, float, str, int]:
    unknown = sorted(set(form.keys()) - set(OPTIONS))
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(OPTIONS)}")
    size = _option(form, "size", int, colorizer.size)
    saturation = _option(form, "saturation", float, colorizer.saturation)
    detail = _option(form, "detail", float, colorizer.detail)
    fmt = str(form.get("format") or "png").lower()
    quality = _option(form, "quality", int, 95)
    try:
        check_render_settings(size, saturation, detail)
    except ValueError as error:
        raise ApiError(400, str(error)) from None
    if colorizer.backend != "torch" and size != colorizer.model.native_size:
        raise ApiError(400, f"size={size}: this ONNX model renders at {colorizer.model.native_size} px only")
    if fmt not in FORMATS:
        raise ApiError(400, f"format={fmt!r}: expected png, jpeg or webp")
    if not 1 <= quality <= 100:
        raise ApiError(400, f"quality={quality}: expected 1..100")
    return size, saturation, detail, fmt, quality


def api_router(colorizer: Colorizer, batcher: DynamicBatcher, limits: ServeLimits) -> APIRouter:
    router = APIRouter(prefix="/api")
    held = {"now": 0}  # requests admitted and not answered; the event loop is one thread
    max_bytes = limits.max_file_mb * 1024 * 1024

    @router.get("/health")
    def health() -> dict:
        stats = batcher.stats
        return {
            "status": "ok",
            "model": colorizer.name,
            "in_flight": held["now"],
            "queue_limit": limits.max_queue,
            "served": stats.requests,
            "batches": stats.batches,
            "mean_batch": round(stats.mean_batch, 3),
            "refused": stats.refused,
        }

    @router.get("/model")
    def model() -> dict:
        metadata = colorizer.checkpoint.metadata
        return {
            "name": colorizer.name,
            "arch": colorizer.checkpoint.arch,
            **colorizer.render_settings(),
            "card": metadata.get("card", {}),
            "batching": {"max_batch": batcher.max_batch, "max_wait_ms": batcher.max_wait * 1000, "max_queue": limits.max_queue},
            "limits": {"max_file_mb": limits.max_file_mb, "max_megapixels": limits.max_pixels / 1e6},
        }

    @router.post("/colorize")
    async def colorize(request: Request) -> Response:
        if held["now"] >= limits.max_queue:
            batcher.stats.refused += 1
            return error_response(_busy(held["now"]))
        held["now"] += 1
        try:
            return await _colorize(request)
        except ApiError as error:
            return error_response(error)
        finally:
            held["now"] -= 1

    async def _colorize(request: Request) -> Response:
        started = time.perf_counter()
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
            raise ApiError(413, f"the request is {int(declared) / 1e6:.1f} MB; the limit is {limits.max_file_mb} MB")
        try:
            form = await request.form(max_files=2, max_fields=len(OPTIONS))
        except Exception as error:  # starlette raises its own HTTPException / MultiPartException for malformed bodies
            raise ApiError(400, f"expected multipart/form-data with the photo in a field named image ({error})") from None
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise ApiError(400, "send the photo as a file in a multipart field named image (curl -F image=@photo.jpg)")
        name = Path(upload.filename or "upload").name
        size, saturation, detail, fmt, quality = _options(colorizer, form)
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ApiError(413, f"{name}: over the limit of {limits.max_file_mb} MB")
        try:
            image = await run_in_threadpool(decode_image, data, limits.max_pixels)
        except ImageTooLarge as error:
            raise ApiError(413, f"{name}: {error}") from None
        except ImageReadError as error:
            if str(error).startswith(("not an image", "unreadable image header", "empty file")):
                raise ApiError(415, f"{name}: not an image that chromafuse reads; found {found_in(data)}") from None
            raise ApiError(400, f"{name}: {error}") from None
        guidance = await _guidance(form, image.shape, max_bytes, limits.max_pixels)
        lightness, small = await run_in_threadpool(_prepare, image.pixels, size, detail)
        if guidance:  # steered requests run one by one on the guided model, beside the batches
            guided = colorizer.for_guidance().with_render(saturation=saturation)
            shape = [lightness.shape]
            ab = (await run_in_threadpool(guided.predict_guided, small[None], [guidance], shape))[0]
        else:
            try:
                future = batcher.submit(small, saturation)
            except QueueFull:
                raise _busy(batcher.waiting) from None
            ab = await asyncio.wrap_future(future)
        extension, media_type = FORMATS[fmt]
        body, notes = await run_in_threadpool(_finish, lightness, ab, image, extension, quality)
        headers = {
            "Content-Disposition": f'inline; filename="{Path(name).stem}_color{extension}"',
            "X-Chromafuse-Model": colorizer.name,
            "X-Chromafuse-Seconds": f"{time.perf_counter() - started:.3f}",
        }
        if notes or image.notes:
            headers["X-Chromafuse-Notes"] = "; ".join([*image.notes, *notes]).encode("ascii", "replace").decode()
        return Response(body, media_type=media_type, headers=headers)

    return router


async def _guidance(form, shape: tuple[int, int], max_bytes: int, max_pixels: int) -> Guidance | None:
    """The hints field (JSON: [{"x": .., "y": .., "color": "#rrggbb"}, ..]) and the reference file, checked; 400 if bad."""
    raw, upload = form.get("hints"), form.get("reference")
    if raw in (None, "") and upload is None:
        return None
    try:
        hints = []
        if raw not in (None, ""):
            try:
                points = json.loads(raw if isinstance(raw, str) else (await raw.read()).decode())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise HintError(f"hints: not JSON ({error})") from None
            if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
                raise HintError('hints: expected a JSON list like [{"x": 120, "y": 80, "color": "#b02a2a"}]')
            hints = [
                make_hint(p.get("x"), p.get("y"), p.get("color"), p.get("radius"), f"hints[{n}]") for n, p in enumerate(points)
            ]
        reference = None
        if upload is not None:
            if isinstance(upload, str):
                raise HintError("reference: send the reference photo as a file (-F reference=@album.jpg)")
            data = await upload.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise ApiError(413, "reference: over the size limit")
            try:
                decoded = await run_in_threadpool(decode_image, data, max_pixels)
            except ImageReadError as error:
                raise HintError(f"reference: {error}") from None
            if not decoded.is_color:
                raise HintError("reference: the reference photo has no colour (it is grayscale)")
            reference = await run_in_threadpool(load_reference, decoded.pixels)
        guidance = Guidance(tuple(hints), reference)
        guidance.check(shape[1], shape[0], "hints")
        return guidance
    except HintError as error:
        raise ApiError(400, str(error)) from None


def _busy(waiting: int) -> ApiError:
    return ApiError(503, f"busy: {waiting} requests are in progress; retry shortly", {"Retry-After": str(RETRY_AFTER_S)})


def _prepare(pixels, size: int, detail: float):
    lightness = lightness_of(pixels)
    return lightness, render_lightness(lightness, size, detail)


def _finish(lightness, ab, image, extension: str, quality: int) -> tuple[bytes, list[str]]:
    rgb = join_small_ab(lightness, ab, image.bit_depth)
    return encode_image(rgb, image.alpha, extension, quality)
