"""The web page of ``chromafuse serve``: a Gradio app over the same ``Colorizer`` as the CLI.

Gradio is an optional extra (``pip install "chromafuse[web]"``). The page never reaches out:
no analytics, system fonts only, no share links; it limits upload size and pixel count, and queues
clicks one at a time so memory stays bounded. ``server`` mounts it beside the HTTP API.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..color.fullres import gray_from_lightness, lightness_of
from ..guidance.guide import Guidance, load_reference
from ..guidance.hints import Hint, HintError, make_hint, rgb_of_hex
from ..inference.colorizer import Colorizer
from ..media.files import write_atomic
from ..media.images import ImageReadError, encode_image, read_image
from .limits import ServeLimits

INSTALL_HINT = 'the web page needs the "web" extra: pip install "chromafuse[web]"'


def missing_extra() -> str | None:
    """Why ``serve`` cannot run here, or None when Gradio is installed."""
    return None if importlib.util.find_spec("gradio") is not None else INSTALL_HINT


@dataclass
class PageResult:
    """What one click produced: result files (for the page) and a message per file that failed."""

    items: list[dict] = field(default_factory=list)  # name, gray, color (paths), seconds
    errors: list[str] = field(default_factory=list)
    zip_path: Path | None = None
    seconds: float = 0.0


def _unique_stem(name: str, taken: set[str]) -> str:
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem, flags=re.UNICODE) or "image"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate)
    return candidate


def colorize_uploads(
    colorizer: Colorizer,
    uploads: list[tuple[str, Path]],
    workdir: Path,
    limits: ServeLimits = ServeLimits(),
    on_progress=None,
    hints: list[Hint] | None = None,
    reference: np.ndarray | None = None,
) -> PageResult:
    """Colorize uploaded files (display name, path) into ``workdir``: a grayscale preview and a
    full-resolution PNG per image, plus a zip of all results. Bad files are reported, not raised.
    ``hints`` steer the first photo (the one the page shows for guiding), ``reference`` (a global hint) all."""
    started = time.perf_counter()
    result = PageResult()
    if len(uploads) > limits.max_files:
        result.errors.append(
            f"{len(uploads)} files uploaded; at most {limits.max_files} per click; the first {limits.max_files} were used"
        )
        uploads = uploads[: limits.max_files]
    taken: set[str] = set()
    for index, (name, path) in enumerate(uploads):
        if on_progress is not None:
            on_progress(index, len(uploads), name)
        file_started = time.perf_counter()
        try:
            size = Path(path).stat().st_size
            if size > limits.max_file_mb * 1024 * 1024:
                raise ImageReadError(f"{size / 1e6:.1f} MB is over the limit of {limits.max_file_mb} MB")
            decoded = read_image(Path(path), max_pixels=limits.max_pixels)
        except ImageReadError as error:
            result.errors.append(f"{name}: {error}")
            continue
        lightness = lightness_of(decoded.pixels)
        guidance = Guidance(tuple(hints or ()) if index == 0 else (), reference)
        try:
            guidance.check(lightness.shape[1], lightness.shape[0], name)
            rgb = colorizer.colorize_lightness([lightness], decoded.bit_depth, [guidance])[0]
        except HintError as error:
            result.errors.append(str(error))
            continue
        stem = _unique_stem(name, taken)
        color_path, gray_path = workdir / f"{stem}_color.png", workdir / f"{stem}_gray.png"
        write_atomic(color_path, encode_image(rgb, decoded.alpha, ".png", 95)[0])
        write_atomic(gray_path, encode_image(gray_from_lightness(lightness, 8), None, ".png", 95)[0])
        result.items.append(
            {"name": name, "gray": str(gray_path), "color": str(color_path), "seconds": time.perf_counter() - file_started}
        )
    if result.items:
        result.zip_path = workdir / "chromafuse-results.zip"
        with zipfile.ZipFile(result.zip_path, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for item in result.items:
                archive.write(item["color"], Path(item["color"]).name)
    result.seconds = time.perf_counter() - started
    return result


def table_rows(table) -> list[list]:
    """The rows of a Gradio Dataframe value (a pandas frame, a list of lists, or None)."""
    if table is None:
        return []
    return table.values.tolist() if hasattr(table, "values") else list(table)


def hints_from_table(rows) -> list[Hint]:
    """The page's hint table (rows of x, y, colour; a pandas frame or lists) -> hints; blank rows are skipped,
    a bad value is a HintError naming its row."""
    hints = []
    for number, row in enumerate(table_rows(rows), start=1):
        cells = [c for c in list(row)[:3]]
        if all(c in (None, "") or (isinstance(c, float) and np.isnan(c)) for c in cells):
            continue
        x, y, color = (cells + [None] * 3)[:3]
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            raise HintError(f"hint row {number}: x {x!r} and y {y!r} must be numbers") from None
        hints.append(make_hint(x, y, str(color), where=f"hint row {number}"))
    return hints


def guide_preview(colorizer: Colorizer, path: Path, hints: list[Hint], reference: np.ndarray | None, limits: ServeLimits):
    """The first photo colorized with the current hints, each hint marked (a ring in its colour): the image
    the page's guide panel shows, at the photo's own size so that clicks land in its pixels."""
    import cv2

    decoded = read_image(Path(path), max_pixels=limits.max_pixels)
    lightness = lightness_of(decoded.pixels)
    guidance = Guidance(tuple(hints), reference)
    guidance.check(lightness.shape[1], lightness.shape[0], Path(path).name)
    rgb = np.ascontiguousarray(colorizer.colorize_lightness([lightness], 8, [guidance])[0])
    ring = max(4, round(max(rgb.shape[:2]) / 100))
    for hint in hints:
        centre = (int(hint.x), int(hint.y))
        colour = rgb_of_hex(hint.color)
        cv2.circle(rgb, centre, ring + 2, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.circle(rgb, centre, ring, colour, 2, cv2.LINE_AA)
    return rgb


def summary_markdown(colorizer_name: str, result: PageResult) -> str:
    done = len(result.items)
    lines = [f"Colorized **{done}** photo{'s' if done != 1 else ''} with **{colorizer_name}** in **{result.seconds:.1f} s**."]
    if result.errors:
        lines.append("")
        lines += [f"- ⚠️ {message}" for message in result.errors]
    return "\n".join(lines)


def build_app(colorizer: Colorizer, workroot: Path, limits: ServeLimits = ServeLimits()):
    """The Gradio Blocks app, writing results under ``workroot``; ``launch`` it yourself or call :func:`serve`."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    def guidance_of(table, reference_path):
        hints = hints_from_table(table)
        return hints, load_reference(reference_path) if reference_path else None

    def run(files, size, saturation, detail, table, reference_path, progress=gr.Progress()):
        if not files:
            return [], gr.update(value=None, visible=False), "Upload one or more photos first."
        workdir = Path(tempfile.mkdtemp(dir=workroot))
        uploads = [(Path(getattr(f, "name", f)).name, Path(getattr(f, "name", f))) for f in files]
        model = colorizer.with_render(size, saturation, detail)
        try:
            hints, reference = guidance_of(table, reference_path)
        except HintError as error:
            return [], gr.update(value=None, visible=False), f"⚠️ {error}"
        result = colorize_uploads(
            model,
            uploads,
            workdir,
            limits,
            on_progress=lambda i, n, name: progress((i, n), desc=f"colorizing {name}"),
            hints=hints,
            reference=reference,
        )
        zip_update = (
            gr.update(value=str(result.zip_path), visible=True) if result.zip_path else gr.update(value=None, visible=False)
        )
        return result.items, zip_update, summary_markdown(colorizer.name, result)

    def preview(files, size, saturation, detail, table, reference_path):
        if not files:
            return None, ""
        try:
            hints, reference = guidance_of(table, reference_path)
            model = colorizer.with_render(size, saturation, detail)
            return guide_preview(model, Path(getattr(files[0], "name", files[0])), hints, reference, limits), ""
        except (HintError, ImageReadError) as error:
            return None, f"⚠️ {error}"

    def add_hint(table, color, event: gr.SelectData):
        rows = [
            r for r in table_rows(table) if any(c not in (None, "") and c == c for c in r)
        ]  # blank rows (None, "", NaN) dropped
        x, y = event.index[:2]
        return rows + [[int(x), int(y), color]]

    add_hint.__annotations__["event"] = gr.SelectData  # a real class: the module's annotations are strings

    def drop_last(table):
        return table_rows(table)[:-1]

    with gr.Blocks(title="chromafuse", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"# chromafuse\nBlack-and-white photos in, colour out. Model: **{colorizer.name}**.")
        with gr.Row():
            with gr.Column(scale=2):
                files = gr.File(label="Photos (drag and drop one or many)", file_count="multiple", elem_id="uploads")
            with gr.Column(scale=1):
                size = gr.Slider(128, 512, value=colorizer.size, step=32, label="Render size (px)")
                saturation = gr.Slider(0.0, 2.0, value=colorizer.saturation, step=0.05, label="Saturation")
                detail = gr.Slider(
                    0.25,
                    1.0,
                    value=colorizer.detail,
                    step=0.05,
                    label="Detail",
                    info="Finest detail the model sees, as a share of the render size; lower can calm very sharp scans.",
                    elem_id="detail",
                )
                button = gr.Button("Colorize", variant="primary", elem_id="colorize")
        with gr.Accordion("Guide the colours (optional)", open=True):
            gr.Markdown(
                "Click the first photo to place a colour hint (the colour below; only its hue and saturation count). "
                "Edit a row to move a hint or change its colour; a reference photo lends its colours to every photo."
            )
            with gr.Row():
                with gr.Column(scale=2):
                    guide_image = gr.Image(
                        label="First photo: click to place a hint", type="numpy", interactive=False, elem_id="guide-image"
                    )
                with gr.Column(scale=1):
                    hint_color = gr.ColorPicker(value="#c81e1e", label="Hint colour", elem_id="hint-color")
                    hint_table = gr.Dataframe(
                        headers=["x", "y", "color"],
                        datatype=["number", "number", "str"],
                        value=[],
                        interactive=True,
                        label="Hints (pixels of the photo)",
                        elem_id="hint-table",
                    )
                    with gr.Row():
                        undo = gr.Button("Remove last hint", elem_id="remove-hint")
                        clear = gr.Button("Clear hints", elem_id="clear-hints")
                    reference = gr.Image(type="filepath", label="Reference photo (optional)", elem_id="reference")
            guide_status = gr.Markdown(elem_id="guide-status")
        status = gr.Markdown(elem_id="status")
        download_all = gr.DownloadButton("Download all (zip)", visible=False, elem_id="download-all")
        results = gr.State([])

        @gr.render(inputs=results)
        def show(items):
            for number, item in enumerate(items):
                with gr.Group():
                    gr.ImageSlider(
                        value=(item["gray"], item["color"]),
                        type="filepath",
                        label=f"{item['name']} ({item['seconds']:.2f} s)",
                        buttons=["fullscreen"],
                        elem_id=f"result-{number}",
                    )
                    gr.DownloadButton(f"Download {Path(item['color']).name}", value=item["color"], elem_id=f"download-{number}")

        guide_inputs = [files, size, saturation, detail, hint_table, reference]
        button.click(run, inputs=guide_inputs, outputs=[results, download_all, status], concurrency_limit=1)
        for trigger in (files.change, reference.change, hint_table.input):
            trigger(preview, inputs=guide_inputs, outputs=[guide_image, guide_status], concurrency_limit=1)
        guide_image.select(add_hint, inputs=[hint_table, hint_color], outputs=hint_table).then(
            preview, inputs=guide_inputs, outputs=[guide_image, guide_status], concurrency_limit=1
        )
        undo.click(drop_last, inputs=hint_table, outputs=hint_table).then(
            preview, inputs=guide_inputs, outputs=[guide_image, guide_status], concurrency_limit=1
        )
        clear.click(lambda: [], outputs=hint_table).then(
            preview, inputs=guide_inputs, outputs=[guide_image, guide_status], concurrency_limit=1
        )
    app.queue(max_size=32, default_concurrency_limit=1)
    return app
