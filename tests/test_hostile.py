"""Hostile inputs and options, generated here: each must end in a clear message naming the value or
the file, the right exit code, and nothing of the user's lost (issue 19)."""

import json
import os

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


def _failures(result) -> dict[str, str]:
    records = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    return {r["input"]: r["reason"] for r in records if r.get("event") == "file" and r["status"] == "failed"}


def test_unreadable_folders_dangling_links_and_link_loops_are_failures_not_silence(tmp_path, photo, monkeypatch):
    root = photo.parent
    (root / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (root / "sub").mkdir()
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    locked = root / "locked"
    write_rgb(locked / "unseen.png", synthetic_photo(16, 16, seed=2))
    real_scandir = os.scandir

    def scandir(path="."):  # a folder this user may not list (chmod 0 does not stop root, who runs CI)
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = runner.invoke(app, ["colorize", str(root), "-o", str(tmp_path / "out"), "--jsonl"])
    failures = _failures(result)
    assert result.exit_code == 1 and set(failures) == {str(root / "dangling.png"), str(root / "sub" / "loop"), str(locked)}
    assert "symbolic link to a file that does not exist" in failures[str(root / "dangling.png")]
    assert "symbolic-link loop" in failures[str(root / "sub" / "loop")]
    assert "cannot be read (Permission denied)" in failures[str(locked)]
    assert (tmp_path / "out" / "photo.png").exists() and not (tmp_path / "out" / "sub").exists()


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input_and_resumes(tmp_path, photo):
    root = photo.parent
    out = root / "colour"
    first = runner.invoke(app, ["colorize", str(root), "-o", str(out)])
    assert first.exit_code == 0 and (out / "photo.png").exists()
    again = runner.invoke(app, ["colorize", str(root), "-o", str(out), "--skip-existing", "--jsonl"])
    records = [json.loads(line) for line in again.output.splitlines() if line.startswith("{")]
    files = [r for r in records if r.get("event") == "file"]
    assert again.exit_code == 0 and [(r["input"], r["status"]) for r in files] == [(str(photo), "skipped")]
    assert not (out / "colour").exists()


def test_a_compare_strip_that_cannot_be_written_leaves_no_output_for_skip_existing_to_trust(tmp_path):
    thin = write_rgb(tmp_path / "in" / "thin.png", np.full((1, 40000, 3), 128, np.uint8))  # strip: 80000 px, over JPEG's limit
    out = tmp_path / "out"
    first = runner.invoke(app, ["colorize", str(thin), "-o", str(out), "--compare", "--jsonl"])
    assert first.exit_code == 1 and str(thin) in _failures(first)
    assert not (out / "thin.png").exists() and not (out / "thin-compare.jpg").exists()
    resumed = runner.invoke(app, ["colorize", str(thin), "-o", str(out), "--compare", "--skip-existing", "--jsonl"])
    assert resumed.exit_code == 1 and str(thin) in _failures(resumed)  # tried again, not counted as done


def _asymmetric() -> np.ndarray:
    base = np.zeros((20, 30, 3), np.uint8)
    base[:5, :10] = (255, 0, 0)
    base[-3:, -4:] = (0, 0, 255)
    base[8:12, 12:20] = (0, 255, 0)
    return base


@pytest.mark.parametrize("fmt, ext", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("TIFF", ".tif")])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_applied_exactly_once_in_every_format(tmp_path, fmt, ext, orientation):
    from PIL import Image, ImageOps

    from chromafuse.media.images import read_image

    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{ext}"
    options = {"quality": 100} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(_asymmetric()).save(path, format=fmt, exif=exif, **options)
    with Image.open(path) as image:  # the independent reference: Pillow's own EXIF transpose
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB")).astype(int)
    got = read_image(path).pixels.astype(int)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 40


def test_a_jpeg_corrupt_in_the_middle_fails_with_its_name(tmp_path):
    data = bytearray(cv2.imencode(".jpg", synthetic_photo(256, 256, seed=4))[1].tobytes())
    for i in range(len(data) // 2, len(data) // 2 + 1500, 7):
        data[i] = 0xFF if i % 2 else 0x00
    broken = tmp_path / "in" / "broken.jpg"
    broken.parent.mkdir()
    broken.write_bytes(bytes(data))
    assert data.rfind(b"\xff\xd9") > len(data) - 4  # the end marker is intact
    result = runner.invoke(app, ["colorize", str(broken), "-o", str(tmp_path / "out"), "--jsonl"])
    assert result.exit_code == 1 and "corrupt JPEG data" in _failures(result)[str(broken)]
    assert not (tmp_path / "out" / "broken.jpg").exists()


def test_a_gray_png_with_a_transparency_chunk_keeps_its_transparency(tmp_path):
    from PIL import Image

    from chromafuse.media.images import read_image

    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    path = tmp_path / "in" / "clear.png"
    path.parent.mkdir()
    Image.fromarray(gray, mode="L").save(path, transparency=100)  # level 100 is transparent
    decoded = read_image(path)
    assert decoded.alpha is not None and decoded.alpha[0, 10] == 0 and decoded.alpha[0, 9] == 255
    result = runner.invoke(app, ["colorize", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0
    written = cv2.imread(str(tmp_path / "out" / "clear.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (8, 25, 4) and written[0, 10, 3] == 0 and written[0, 9, 3] == 255


def test_pillow_follows_our_pixel_limit_and_headers_come_before_reading(tmp_path):
    from chromafuse.media.images import ImageReadError, read_image
    from tests.test_colorize import crafted_png

    big = tmp_path / "95mp.png"
    big.write_bytes(crafted_png(11_000, 8_700))  # 95.7 MP: under our 200 MP limit, over Pillow's 89 MP warning
    with pytest.raises(ImageReadError) as under:
        read_image(big)
    assert "bomb" not in str(under.value) and "limit" not in str(under.value)  # refused only for its broken data
    with pytest.raises(ImageReadError, match="^refused: 11000x8700 is over the limit of 50,000,000 pixels$"):
        read_image(big, max_pixels=50_000_000)
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as handle:  # 3 GB, sparse: a reader that reads it whole would need 3 GB of memory
        handle.truncate(3 * 1024**3)
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(huge)


def test_training_refuses_what_colorize_refuses(tmp_path):
    from chromafuse.training.data import build_cache
    from tests.test_colorize import crafted_png

    folder = tmp_path / "photos"
    write_rgb(folder / "good.png", synthetic_photo(80, 80, seed=6))
    (folder / "huge.png").write_bytes(crafted_png(20_000, 20_000))
    cache = build_cache([folder], 64, tmp_path / "cache", min_side=32)
    assert len(cache.files) == 1 and cache.skipped == {"over_pixel_limit": 1}


def test_a_multi_page_tiff_says_that_only_its_first_page_was_colorized(tmp_path):
    from PIL import Image

    pages = [Image.fromarray(np.full((16, 16), level, np.uint8)) for level in (40, 120, 200)]
    path = tmp_path / "in" / "scan.tif"
    path.parent.mkdir()
    pages[0].save(path, save_all=True, append_images=pages[1:])
    result = runner.invoke(app, ["colorize", str(path), "-o", str(tmp_path / "out"), "--jsonl"])
    files = [json.loads(line) for line in result.output.splitlines() if line.startswith('{"event": "file"')]
    assert result.exit_code == 0 and files[0]["notes"] == ["only the first of its 3 pages (frames) was colorized"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"state_dict": [1, 2, 3]}, "'state_dict' is not a mapping of tensor names to tensors"),
        ({"state_dict": {"conv.weight": "not a tensor"}}, "'state_dict' is not a mapping of tensor names to tensors"),
        ({"model_args": ["width", 8]}, "'model_args' is list, not a mapping"),
        ({"model_args": {"no_such_argument": 1}}, "cannot build model"),
        ({"arch": 42}, "'arch' is int, not a model name"),
    ],
)
def test_a_checkpoint_with_the_right_marker_but_malformed_contents_is_a_usage_error(
    tmp_path, photo, tiny_checkpoint, change, message
):
    import torch

    payload = torch.load(tiny_checkpoint, weights_only=True)
    bad = tmp_path / "bad.ckpt"
    torch.save({**payload, **change}, bad)
    result = runner.invoke(app, ["colorize", str(photo), "-o", str(tmp_path / "out"), "-w", str(bad)])
    assert result.exit_code == 2 and "bad.ckpt" in result.output and message in result.output, result.output


def test_a_training_run_folder_that_is_a_file_is_a_usage_error_and_the_file_is_kept(tmp_path, photo_folder):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    result = runner.invoke(app, ["train", str(photo_folder), "--out", str(target), "--steps", "1"])
    assert result.exit_code == 2 and "notes.txt: the run folder must be a folder" in result.output
    assert target.read_text() == "mine"
