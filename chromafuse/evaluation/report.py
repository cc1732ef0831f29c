"""Evaluation reports: JSON, CSV, Markdown (for CI job summaries), self-contained HTML, JUnit XML."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from ..media.files import check_output_file, write_atomic
from ..media.listing import list_images
from .metrics import METRICS
from .runner import Evaluation, ModelScores

SUMMARY_KEYS = ("psnr", "ssim", "mse", "rmse", "ciede2000", "colorfulness", "colorfulness_ref")


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return round(value, 6) if isinstance(value, float) else value


def summary_json(result: Evaluation) -> dict:
    """Top-level keys are the primary model's means; details follow."""
    primary = result.primary.summary()
    return {
        **{key: _clean(primary[key]["mean"]) for key in SUMMARY_KEYS},
        "model": result.primary.name,
        "weights": result.primary.weights,
        "images": len(result.primary.rows),
        "protocol": result.protocol,
        "render_size": result.render_size,
        "render": result.primary.render,
        "reference_dir": result.reference_dir,
        "settings": result.settings,
        "aggregates": {key: {k: _clean(v) for k, v in agg.items()} for key, agg in primary.items()},
        "baseline": _model_json(result.baseline, rows=False),
        "models": [_model_json(m, rows=False) for m in result.models],
        "missing": result.missing,
        "extra": result.extra,
        "failed": [{"file": f, "reason": r} for f, r in result.failed],
    }


def _model_json(scores: ModelScores, rows: bool) -> dict:
    out = {
        "name": scores.name,
        "weights": scores.weights,
        **({"render": scores.render} if scores.render else {}),
        "summary": {k: {s: _clean(v) for s, v in agg.items()} for k, agg in scores.summary().items()},
    }
    if rows:
        out["rows"] = [{k: _clean(v) for k, v in row.items()} for row in scores.rows]
    return out


def full_json(result: Evaluation) -> dict:
    out = summary_json(result)
    out["per_image"] = {
        m.name: [{k: _clean(v) for k, v in row.items()} for row in m.rows] for m in (*result.models, result.baseline)
    }
    return out


def _csv_text(result: Evaluation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "file", *METRICS, "colorfulness_ref"])
    for scores in (*result.models, result.baseline):
        for row in scores.rows:
            writer.writerow([scores.name, row["file"], *(f"{row[k]:.6g}" for k in (*METRICS, "colorfulness_ref"))])
    return buffer.getvalue()


def render_line(render: dict) -> str:
    """A model's render settings in words: '256 px, saturation 1.00, detail 1.00, torch fp32 on cpu'."""
    return (
        f"{render['render_size']} px, saturation {render['saturation']:.2f}, detail {render['detail']:.2f}, "
        f"{render['backend']} {render['precision']} on {render['device']}"
    )


def markdown(result: Evaluation) -> str:
    lines = [
        f"# chromafuse evaluation: {result.reference_dir}",
        "",
        f"Protocol **{result.protocol}**"
        + (f", render size {result.render_size} px" if result.render_size else "")
        + f", {len(result.primary.rows)} images.",
        "",
        "| model | PSNR (dB) | SSIM | MSE | RMSE | CIEDE2000 | colourfulness (ref) |",
        "|---|---|---|---|---|---|---|",
    ]
    for scores in (*result.models, result.baseline):
        s = scores.summary()
        lines.append(
            f"| {scores.name} | {s['psnr']['mean']:.2f} | {s['ssim']['mean']:.4f} | {s['mse']['mean']:.1f} | "
            f"{s['rmse']['mean']:.2f} | {s['ciede2000']['mean']:.2f} | {s['colorfulness']['mean']:.2f} "
            f"({s['colorfulness_ref']['mean']:.2f}) |"
        )
    s = result.primary.summary()
    lines += [
        "",
        f"Primary model spread: PSNR median {s['psnr']['median']:.2f}, std {s['psnr']['std']:.2f}, worst {s['psnr']['worst']:.2f}; "
        f"CIEDE2000 median {s['ciede2000']['median']:.2f}, worst {s['ciede2000']['worst']:.2f}.",
        "",
        "Settings:",
    ]
    lines += [f"- {k}: {v}" for k, v in result.settings.items()]
    lines += [f"- render ({scores.name}): {render_line(scores.render)}" for scores in result.models if scores.render]
    if result.problems or result.extra:
        lines += (
            ["", "Problems:"]
            + [f"- {p}" for p in result.problems]
            + [f"- extra prediction without reference: {e}" for e in result.extra]
        )
    return "\n".join(lines) + "\n"


def html_report(result: Evaluation) -> str:
    """One self-contained page: the summary table, then the worst images first, with thumbnails."""
    table = markdown(result).split("\n")
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell.strip())}</td>" for cell in line.strip("|").split("|")) + "</tr>"
        for line in table
        if line.startswith("| ") and not line.startswith("| model")
    )
    cards = []
    for ciede, file, ref, pred in sorted(result.primary.thumbnails, reverse=True):
        ref_src = "data:image/jpeg;base64," + base64.b64encode(ref).decode()
        pred_src = "data:image/jpeg;base64," + base64.b64encode(pred).decode()
        cards.append(
            f'<figure><img src="{ref_src}" alt="reference"><img src="{pred_src}" alt="prediction">'
            f"<figcaption>{html.escape(file)} &middot; CIEDE2000 {ciede:.2f}</figcaption></figure>"
        )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>chromafuse evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
figure{{display:inline-block;margin:6px;font-size:12px}}img{{margin-right:2px}}</style></head><body>
<h1>chromafuse evaluation</h1><p>{html.escape(result.reference_dir)} &middot; protocol {html.escape(result.protocol)} &middot; {len(result.primary.rows)} images</p>
<table><tr><th>model</th><th>PSNR</th><th>SSIM</th><th>MSE</th><th>RMSE</th><th>CIEDE2000</th><th>colourfulness (ref)</th></tr>{rows}</table>
<h2>Worst images first (reference | prediction of {html.escape(result.primary.name)})</h2>{"".join(cards)}
</body></html>"""


def junit(result: Evaluation, misses: list[str]) -> str:
    s = result.primary.summary()
    cases = []
    for key in METRICS:
        failure = [m for m in misses if m.startswith(f"mean {key} ")]
        body = f"<failure message={quoteattr(failure[0])}/>" if failure else ""
        cases.append(f'<testcase classname="chromafuse.evaluate" name="{key}={s[key]["mean"]:.4f}">{body}</testcase>')
    for problem in result.problems:
        cases.append(
            f'<testcase classname="chromafuse.evaluate" name="inputs"><failure message={quoteattr(problem)}/></testcase>'
        )
    failures = len(misses) + len(result.problems)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name={quoteattr("chromafuse evaluate " + escape(result.reference_dir))} '
        f'tests="{len(cases)}" failures="{failures}">\n' + "\n".join(cases) + "\n</testsuite>\n"
    )


REPORT_FILES = ("report.json", "report.csv", "report.md", "report.html")


def check_report_paths(
    inputs: list[Path | None], out_dir: Path | None, json_path: Path | None, junit_path: Path | None, overwrite: bool
) -> None:
    """Before any scoring: every report goes to a new file (or ``overwrite``), never onto an input image
    (the references and predictions in the folders ``inputs``) and never onto a folder."""
    protected = {path.resolve() for folder in inputs if folder is not None for path in list_images([Path(folder)])}
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise ValueError(f"--out {out_dir}: is a file; give a folder for the reports")
        for name in REPORT_FILES:
            check_output_file(out_dir / name, "--out", protected, overwrite)
    for path, what in ((json_path, "--json"), (junit_path, "--junit")):
        if path is not None:
            check_output_file(path, what, protected, overwrite)


def write_reports(result: Evaluation, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = [json.dumps(full_json(result), indent=2), _csv_text(result), markdown(result), html_report(result)]
    files = dict(zip(REPORT_FILES, texts))
    for name, text in files.items():
        write_atomic(out_dir / name, text.encode())
    return [out_dir / name for name in files]
