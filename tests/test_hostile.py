"""Hostile inputs and options, generated here: each must end in a clear message naming the value or
the file, the right exit code, and nothing of the user's lost (issue 19)."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from chromafuse.cli import app
from tests.conftest import synthetic_photo, write_rgb

runner = CliRunner()


@pytest.fixture()
def photo(tmp_path):
    return write_rgb(tmp_path / "in" / "photo.png", cv2.cvtColor(synthetic_photo(48, 64, seed=3), cv2.COLOR_RGB2GRAY))


@pytest.mark.parametrize("device", ["xpu", "meta", "vulkan", "tpu:0"])
def test_unsupported_devices_are_usage_errors_naming_the_value(tmp_path, photo, device):
    result = runner.invoke(app, ["colorize", str(photo), "-o", str(tmp_path / "out"), "--device", device])
    assert result.exit_code == 2 and f"'{device}'" in result.output
    assert not (tmp_path / "out").exists()


def test_render_size_zero_is_refused_not_replaced(tmp_path, photo):
    result = runner.invoke(app, ["colorize", str(photo), "-o", str(tmp_path / "out"), "--size", "0"])
    assert result.exit_code == 2 and "render size must be a multiple of 32" in result.output and "got 0" in result.output


def test_an_output_that_is_a_file_is_a_usage_error_and_the_file_is_kept(tmp_path, photo):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    result = runner.invoke(app, ["colorize", str(photo), "-o", str(target)])
    assert result.exit_code == 2 and "notes.txt" in result.output and "must be a folder" in result.output
    assert target.read_text() == "mine"


def test_a_reference_too_small_to_score_is_named_and_fails_the_run(tmp_path):
    refs = tmp_path / "refs"
    write_rgb(refs / "big.png", synthetic_photo(40, 40, seed=1))
    write_rgb(refs / "dot.png", np.full((1, 1, 3), 200, np.uint8))
    result = runner.invoke(app, ["evaluate", str(refs), "--json", str(tmp_path / "r.json"), "-q"])
    assert result.exit_code == 1
    assert "dot.png" in result.output and "1x1 px is too small to score" in result.output
    summary = json.loads((tmp_path / "r.json").read_text())
    assert "nan" not in json.dumps(summary).lower()


@pytest.mark.parametrize("name", ["[red]x.png", "[bold]b[dim]c.png", "[link=x]y.jpg"])
def test_file_names_with_markup_are_printed_as_they_are_and_the_run_goes_on(tmp_path, photo, name):
    (photo.parent / name).write_bytes(b"not an image at all")
    result = runner.invoke(app, ["colorize", str(photo.parent), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert f"failed {photo.parent / name}" in " ".join(result.output.split())
    assert (tmp_path / "out" / "photo.png").exists()


def test_colorize_report_never_lands_on_an_input_a_folder_or_an_existing_file(tmp_path, photo):
    before = photo.read_bytes()
    out = tmp_path / "out"
    onto_input = runner.invoke(app, ["colorize", str(photo), "-o", str(out), "--report", str(photo)])
    assert onto_input.exit_code == 2 and "is one of this run's inputs" in onto_input.output
    assert photo.read_bytes() == before and not out.exists()  # refused before any work
    onto_folder = runner.invoke(app, ["colorize", str(photo), "-o", str(out), "--report", str(tmp_path)])
    assert onto_folder.exit_code == 2 and "is a folder" in onto_folder.output
    mine = tmp_path / "mine.json"
    mine.write_text("keep me")
    onto_file = runner.invoke(app, ["colorize", str(photo), "-o", str(out), "--report", str(mine)])
    assert onto_file.exit_code == 2 and "exists; pass --overwrite" in onto_file.output and mine.read_text() == "keep me"
    replaced = runner.invoke(app, ["colorize", str(photo), "-o", str(out), "--report", str(mine), "--overwrite"])
    assert replaced.exit_code == 0 and json.loads(mine.read_text())["done"] == 1


def test_evaluate_reports_never_land_on_a_reference_a_folder_or_an_existing_file(tmp_path):
    refs = tmp_path / "refs"
    reference = write_rgb(refs / "a.png", synthetic_photo(40, 40, seed=1))
    before = reference.read_bytes()
    for option, target, message in [
        ("--json", reference, "is one of this run's inputs"),
        ("--junit", refs, "is a folder"),
        ("--out", reference, "is a file; give a folder"),
    ]:
        result = runner.invoke(app, ["evaluate", str(refs), option, str(target), "-q"])
        assert result.exit_code == 2 and message in result.output, (option, result.output)
    assert reference.read_bytes() == before
    report_dir = tmp_path / "report"
    assert runner.invoke(app, ["evaluate", str(refs), "--out", str(report_dir), "-q"]).exit_code == 0
    again = runner.invoke(app, ["evaluate", str(refs), "--out", str(report_dir), "-q"])
    assert again.exit_code == 2 and "report.json exists; pass --overwrite" in again.output
    assert runner.invoke(app, ["evaluate", str(refs), "--out", str(report_dir), "-q", "--overwrite"]).exit_code == 0


def test_export_never_writes_onto_its_source_a_folder_or_an_existing_file(tmp_path, tiny_checkpoint):
    before = tiny_checkpoint.read_bytes()
    onto_source = runner.invoke(app, ["export", str(tiny_checkpoint), str(tiny_checkpoint), "--overwrite"])
    assert onto_source.exit_code == 2 and "is one of this run's inputs" in onto_source.output
    assert tiny_checkpoint.read_bytes() == before
    onto_folder = runner.invoke(app, ["export", str(tiny_checkpoint), str(tmp_path), "--overwrite"])
    assert onto_folder.exit_code == 2 and "is a folder" in onto_folder.output


@pytest.mark.parametrize("port, bound", [("0", "greater than or equal to 1"), ("99999", "less than or equal to 65535")])
def test_serve_refuses_a_port_outside_1_to_65535(port, bound):
    result = runner.invoke(app, ["serve", "--port", port])
    assert result.exit_code == 2 and "Invalid value for '--port'" in result.output and bound in result.output
