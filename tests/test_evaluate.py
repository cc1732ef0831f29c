import json
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab
from typer.testing import CliRunner

from chromafuse.cli import app
from chromafuse.evaluation.metrics import score_pair
from tests.conftest import synthetic_photo, write_rgb

runner = CliRunner()


@pytest.fixture()
def references(tmp_path):
    root = tmp_path / "refs"
    for i, (h, w) in enumerate([(48, 64), (56, 40), (40, 40)]):
        write_rgb(root / ("sub" if i == 2 else ".") / f"ref{i}.png", synthetic_photo(h, w, seed=20 + i))
    return root


def evaluate(*args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def test_model_mode_writes_every_report_with_a_baseline(references, tmp_path, tiny_checkpoint):
    out = tmp_path / "report"
    result = evaluate(references, "-w", tiny_checkpoint, "--out", out, "--json", tmp_path / "s.json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    for key in ("psnr", "ssim", "mse", "rmse", "ciede2000", "colorfulness", "colorfulness_ref"):
        assert isinstance(report[key], float)
    assert report["images"] == 3 and report["protocol"] == "native"
    assert "structural_similarity" in report["settings"]["ssim"]
    # the baseline row: the gray input scored by hand against each reference
    ref = cv2.cvtColor(cv2.imread(str(references / "ref0.png")), cv2.COLOR_BGR2RGB)
    lab = rgb2lab(ref)
    lab[..., 1:] = 0
    gray = (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)
    rows = report["per_image"]["gray input (baseline)"]
    assert next(r for r in rows if r["file"] == "ref0")["psnr"] == pytest.approx(score_pair(gray, ref)["psnr"], abs=1e-4)
    assert report["baseline"]["summary"]["colorfulness"]["mean"] < 0.5
    assert json.loads((tmp_path / "s.json").read_text())["psnr"] == report["psnr"]
    assert "| gray input (baseline) |" in (out / "report.md").read_text()
    csv_lines = (out / "report.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 3 * 2
    html = (out / "report.html").read_text()
    assert html.count("data:image/jpeg;base64,") == 6 and "http" not in html.replace("http-equiv", "")


def test_protocol_256_resizes_references(references, tmp_path, tiny_checkpoint):
    result = evaluate(references, "-w", tiny_checkpoint, "--protocol", "256", "--json", tmp_path / "s.json", "-q")
    assert result.exit_code == 0
    assert json.loads((tmp_path / "s.json").read_text())["protocol"] == "256"


def test_thresholds_fail_with_names_and_margins_and_junit(references, tmp_path, tiny_checkpoint):
    junit = tmp_path / "junit.xml"
    result = evaluate(references, "-w", tiny_checkpoint, "--min-psnr", "99", "--max-mse", "1e9", "--junit", junit, "-q")
    assert result.exit_code == 1
    assert "mean psnr" in result.output and "at least 99" in result.output and "mse" not in result.output.split("fail")[-1]
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "1"
    assert [c.get("name").split("=")[0] for c in suite if c.find("failure") is not None] == ["psnr"]


def test_prediction_mode_reports_missing_extra_and_size_mismatch(references, tmp_path):
    preds = tmp_path / "preds"
    ref0 = cv2.imread(str(references / "ref0.png"))
    preds.mkdir()
    cv2.imwrite(str(preds / "ref0.jpg"), ref0, [cv2.IMWRITE_JPEG_QUALITY, 98])
    cv2.imwrite(str(preds / "ref1.png"), np.zeros((10, 10, 3), np.uint8))  # wrong size
    cv2.imwrite(str(preds / "stray.png"), ref0)
    out = tmp_path / "r"
    result = evaluate(references, "--pred", preds, "--out", out, "-q")
    assert result.exit_code == 1
    assert "missing prediction for" in result.output and "ref2" in result.output
    assert "size mismatch" in result.output and "stray.png" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 1 and report["psnr"] > 30  # ref0 vs its own JPEG at quality 98
    assert report["extra"] and report["missing"] and report["failed"][0]["file"] == "ref1"


def test_compare_weights_scores_two_models(references, tmp_path, tiny_checkpoint):
    result = evaluate(references, "--compare-weights", tiny_checkpoint, tiny_checkpoint, "--json", tmp_path / "s.json", "-q")
    assert result.exit_code == 0, result.output
    models = json.loads((tmp_path / "s.json").read_text())["models"]
    assert [m["name"][:2] for m in models] == ["A:", "B:"]
    assert models[0]["summary"]["psnr"] == models[1]["summary"]["psnr"]


def test_empty_reference_folder_is_a_usage_error(tmp_path, tiny_checkpoint):
    (tmp_path / "empty").mkdir()
    result = evaluate(tmp_path / "empty", "-w", tiny_checkpoint)
    assert result.exit_code == 2 and "no reference images" in result.output


def test_ciede2000_threshold_passes_above_the_measured_mean_and_fails_below(references, tmp_path, tiny_checkpoint):
    summary = tmp_path / "s.json"
    assert evaluate(references, "-w", tiny_checkpoint, "--json", summary, "-q").exit_code == 0
    measured = json.loads(summary.read_text())["ciede2000"]
    assert evaluate(references, "-w", tiny_checkpoint, "--max-ciede2000", measured + 0.01, "-q").exit_code == 0
    failed = evaluate(references, "-w", tiny_checkpoint, "--max-ciede2000", measured - 0.01, "-q")
    assert failed.exit_code == 1
    assert "mean ciede2000" in failed.output and "at most" in failed.output


def test_reports_record_how_each_model_rendered(references, tmp_path, tiny_checkpoint):
    out = tmp_path / "report"
    settings = ["--size", "64", "--saturation", "1.25", "--detail", "0.5", "--backend", "torch", "--precision", "fp32"]
    result = evaluate(references, "-w", tiny_checkpoint, *settings, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    render = {"render_size": 64, "saturation": 1.25, "detail": 0.5, "backend": "torch", "device": "cpu", "precision": "fp32"}
    assert report["render"] == render and report["models"][0]["render"] == render
    assert "render" not in report["baseline"]  # the gray input is not rendered by a model
    assert "64 px, saturation 1.25, detail 0.50, torch fp32 on cpu" in (out / "report.md").read_text()
