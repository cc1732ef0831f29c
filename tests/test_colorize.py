"""colorize end to end through the CLI, on a corpus of good and bad inputs the tests generate."""

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab
from typer.testing import CliRunner

from chromafuse.cli import app
from tests.conftest import synthetic_photo, write_rgb

runner = CliRunner()


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def colorize(*args: str):
    return runner.invoke(app, ["colorize", *map(str, args)])


def read_back(path: Path) -> np.ndarray:
    return cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)


def crafted_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.fixture()
def corpus(tmp_path) -> Path:
    src = tmp_path / "in"
    gray = gray_of(synthetic_photo(48, 64, seed=1))
    src.mkdir()
    cv2.imwrite(str(src / "gray8.png"), gray)
    cv2.imwrite(str(src / "gray16.png"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(src / "gray16.tiff"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(src / "photo.jpg"), gray, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(src / "photo.webp"), gray)
    cv2.imwrite(str(src / "photo.bmp"), gray)
    nested = src / "nested" / "deeper"
    nested.mkdir(parents=True)
    cv2.imwrite(str(nested / "inner.png"), gray)
    return src


def test_formats_bit_depths_and_tree_are_kept(corpus, tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    result = colorize(corpus, "-o", out, "-w", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    expected = {
        "gray8.png": np.uint8,
        "gray16.png": np.uint16,
        "gray16.tiff": np.uint16,
        "photo.jpg": np.uint8,
        "photo.webp": np.uint8,
        "photo.bmp": np.uint8,
        "nested/deeper/inner.png": np.uint8,
    }
    for name, dtype in expected.items():
        image = read_back(out / name)
        assert image.shape == (48, 64, 3) and image.dtype == dtype, name
    assert not list(out.rglob("*.part")) and not list(out.rglob(".*"))


def test_output_keeps_the_input_lightness(tmp_path, tiny_checkpoint):
    gray = gray_of(synthetic_photo(64, 80, seed=3))
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    assert colorize(tmp_path / "g.png", "-o", tmp_path / "out", "-w", tiny_checkpoint).exit_code == 0
    out_rgb = cv2.cvtColor(read_back(tmp_path / "out" / "g.png"), cv2.COLOR_BGR2RGB)
    in_l = rgb2lab(np.repeat(gray[..., None], 3, axis=2))[..., 0]
    out_l = rgb2lab(out_rgb)[..., 0]
    # equal up to uint8 quantisation and gamut clipping of strong predicted colours
    assert np.median(np.abs(out_l - in_l)) < 0.5


def test_exif_orientation_alpha_palette_and_cmyk(tmp_path, tiny_checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    gray = gray_of(synthetic_photo(40, 60, seed=2))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    Image.fromarray(gray).save(src / "rotated.jpg", exif=exif.tobytes())
    rgba = np.dstack([np.repeat(gray[..., None], 3, 2), np.tile(np.linspace(0, 255, 60, dtype=np.uint8), (40, 1))])
    Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
    Image.fromarray(gray).convert("P").save(src / "palette.png")
    Image.fromarray(np.repeat(gray[..., None], 3, 2)).convert("CMYK").save(src / "cmyk.jpg")
    out = tmp_path / "out"
    result = colorize(src, "-o", out, "-w", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    assert read_back(out / "rotated.jpg").shape[:2] == (60, 40)
    alpha_out = read_back(out / "alpha.png")
    assert alpha_out.shape == (40, 60, 4) and np.array_equal(alpha_out[..., 3], rgba[..., 3])
    assert read_back(out / "palette.png").shape == (40, 60, 3)
    cmyk_l = rgb2lab(cv2.cvtColor(read_back(out / "cmyk.jpg"), cv2.COLOR_BGR2RGB))[..., 0]
    ref_l = rgb2lab(np.asarray(Image.open(src / "cmyk.jpg").convert("RGB")))[..., 0]
    assert np.median(np.abs(cmyk_l - ref_l)) < 2.0  # CMYK decoded as the picture, not as inverted channels


def test_bad_inputs_are_recorded_with_reasons_and_the_run_goes_on(tmp_path, tiny_checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    gray = gray_of(synthetic_photo(48, 64, seed=4))
    cv2.imwrite(str(src / "good.png"), gray)
    jpeg = cv2.imencode(".jpg", gray)[1].tobytes()
    (src / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (src / "empty.png").write_bytes(b"")
    (src / "notes.jpg").write_bytes(b"these are my notes, not a photo\n")
    (src / "random.webp").write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    (src / "bomb.png").write_bytes(crafted_png(30000, 30000))
    png = cv2.imencode(".png", gray)[1].tobytes()
    (src / "cut.png").write_bytes(png[: len(png) // 2])
    report = tmp_path / "report.json"
    result = colorize(src, "-o", tmp_path / "out", "-w", tiny_checkpoint, "--report", report)
    assert result.exit_code == 1
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["good.png"]["status"] == "done"
    reasons = {name: f["reason"] for name, f in files.items() if f["status"] == "failed"}
    assert set(reasons) == {"truncated.jpg", "empty.png", "notes.jpg", "random.webp", "bomb.png", "cut.png"}
    assert "truncated" in reasons["truncated.jpg"]
    assert "empty file" in reasons["empty.png"]
    assert "not an image" in reasons["notes.jpg"] and "not an image" in reasons["random.webp"]
    assert "decompression bomb" in reasons["bomb.png"] or "over the limit" in reasons["bomb.png"]
    assert "truncated" in reasons["cut.png"] or "corrupt" in reasons["cut.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_colour_inputs_are_flagged_or_skipped(tmp_path, tiny_checkpoint):
    write_rgb(tmp_path / "in" / "colour.png", synthetic_photo(48, 64, seed=5))
    report, report2 = tmp_path / "r.json", tmp_path / "r2.json"  # a report never replaces a file unless --overwrite
    settings = ["--saturation", "1.5", "--detail", "0.75", "--precision", "fp32"]
    assert colorize(tmp_path / "in", "-o", tmp_path / "a", "-w", tiny_checkpoint, *settings, "--report", report).exit_code == 0
    summary = json.loads(report.read_text())
    recorded = {k: summary[k] for k in ("saturation", "detail", "backend", "device", "precision")}
    assert recorded == {"saturation": 1.5, "detail": 0.75, "backend": "torch", "device": "cpu", "precision": "fp32"}
    entry = summary["files"][0]
    assert entry["status"] == "done" and entry["was_color"] and "already in colour" in entry["notes"][0]
    assert (
        colorize(tmp_path / "in", "-o", tmp_path / "b", "-w", tiny_checkpoint, "--skip-color", "--report", report2).exit_code == 0
    )
    entry = json.loads(report2.read_text())["files"][0]
    assert entry["status"] == "skipped" and not (tmp_path / "b" / "colour.png").exists()


def test_non_ascii_paths_and_globs(tmp_path, tiny_checkpoint):
    folder = tmp_path / "фото архив"
    folder.mkdir()
    gray = gray_of(synthetic_photo(32, 32, seed=6))
    cv2.imencode(".png", gray)[1].tofile(str(folder / "café ñ.png"))
    cv2.imencode(".png", gray)[1].tofile(str(folder / "zweite.png"))
    result = colorize(str(folder / "café*.png"), "-o", tmp_path / "выход", "-w", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "выход").iterdir()] == ["café ñ.png"]


def test_collisions_are_caught_before_any_work(tmp_path, tiny_checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    gray = gray_of(synthetic_photo(32, 32, seed=7))
    cv2.imwrite(str(src / "a.png"), gray)
    cv2.imwrite(str(src / "a.jpg"), gray)
    result = colorize(src, "-o", tmp_path / "out", "-w", tiny_checkpoint, "--ext", "png")
    assert result.exit_code == 2 and "would both be written to" in result.output
    assert not (tmp_path / "out").exists()


def test_inputs_and_existing_outputs_are_never_overwritten(tmp_path, tiny_checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), gray_of(synthetic_photo(32, 32, seed=8)))
    before = (src / "a.png").read_bytes()
    into_itself = colorize(src, "-o", src, "-w", tiny_checkpoint)
    assert into_itself.exit_code == 2 and "is an input file" in into_itself.output
    assert (src / "a.png").read_bytes() == before
    assert colorize(src, "-o", src, "-w", tiny_checkpoint, "--suffix", "_color").exit_code == 0
    assert (src / "a_color.png").exists()  # written into the input folder only when asked

    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"user's own file")
    refused = colorize(src / "a.png", "-o", out, "-w", tiny_checkpoint)
    assert refused.exit_code == 2 and "already exist" in refused.output
    assert (out / "a.png").read_bytes() == b"user's own file"
    skipped = colorize(src / "a.png", "-o", out, "-w", tiny_checkpoint, "--skip-existing")
    assert skipped.exit_code == 0 and (out / "a.png").read_bytes() == b"user's own file"
    assert colorize(src / "a.png", "-o", out, "-w", tiny_checkpoint, "--overwrite").exit_code == 0
    assert read_back(out / "a.png").shape == (32, 32, 3)


def test_ext_quality_compare_and_jsonl(tmp_path, tiny_checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    gray = gray_of(synthetic_photo(40, 50, seed=9))
    cv2.imwrite(str(src / "x.png"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(src / "y.png"), gray)
    result = colorize(
        src, "-o", tmp_path / "out", "-w", tiny_checkpoint, "--ext", "jpg", "--compare", "--jsonl", "--quality", "80"
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["event"] for r in records] == ["file", "file", "summary"]
    assert records[-1]["done"] == 2 and records[-1]["failed"] == 0
    assert any("16-bit reduced to 8-bit" in note for note in records[0]["notes"])
    assert read_back(tmp_path / "out" / "x.jpg").dtype == np.uint8
    assert read_back(tmp_path / "out" / "y-compare.jpg").shape == (40, 100, 3)


def test_usage_errors_exit_2(tmp_path, tiny_checkpoint):
    assert colorize(tmp_path / "missing", "-o", tmp_path / "o", "-w", tiny_checkpoint).exit_code == 2
    assert colorize(tmp_path, "-o", tmp_path / "o", "-w", tiny_checkpoint, "--ext", "gif").exit_code == 2
    bad_weights = tmp_path / "w.ckpt"
    bad_weights.write_bytes(b"junk")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    result = colorize(tmp_path / "a.png", "-o", tmp_path / "o", "-w", bad_weights)
    assert result.exit_code == 2 and "not a chromafuse checkpoint" in result.output


def test_atomic_write_leaves_nothing_on_interrupt(tmp_path, monkeypatch):
    import os

    from chromafuse.media.files import write_atomic

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "out.png", b"data")
    assert list(tmp_path.iterdir()) == []


def test_python_api_on_arrays(tiny_checkpoint):
    from chromafuse import Colorizer

    colorizer = Colorizer.load(tiny_checkpoint, device="cpu")
    gray = gray_of(synthetic_photo(30, 45, seed=10))
    out8 = colorizer.colorize(gray)
    assert out8.shape == (30, 45, 3) and out8.dtype == np.uint8
    out16 = colorizer.colorize(gray.astype(np.uint16) * 257)
    assert out16.dtype == np.uint16 and np.abs(out16 / 257.0 - out8).max() <= 2
    outf = colorizer.colorize(gray.astype(np.float32) / 255)
    assert outf.dtype == np.float32 and np.abs(outf * 255 - out8).max() <= 1.5
    rgba = np.dstack([np.repeat(gray[..., None], 3, 2), np.full_like(gray, 7)])
    assert colorizer.colorize(rgba).shape == (30, 45, 4) and (colorizer.colorize(rgba)[..., 3] == 7).all()
    with pytest.raises(ValueError, match="expected an image array"):
        colorizer.colorize(np.zeros((4, 4, 5), np.uint8))


def test_colorize_paths_api(tmp_path, tiny_checkpoint):
    from chromafuse import Colorizer

    cv2.imwrite(str(tmp_path / "a.png"), gray_of(synthetic_photo(32, 48, seed=11)))
    summary = Colorizer.load(tiny_checkpoint).colorize_paths([tmp_path / "a.png"], tmp_path / "out", suffix="_c")
    assert summary.count("done") == 1 and (tmp_path / "out" / "a_c.png").exists()


def test_no_default_model_message(tmp_path, monkeypatch):
    import chromafuse.inference.colorizer as engine

    monkeypatch.setattr(engine, "default_weights_path", lambda guided=False: tmp_path / "absent.pt")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    result = colorize(tmp_path / "a.png", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "no default model is installed" in result.output and "--weights" in result.output


def test_upsampling_is_bilinear_like_torch():
    import torch
    import torch.nn.functional as F

    from chromafuse.color.fullres import upsample_ab

    small = np.random.default_rng(0).normal(size=(8, 8, 2)).astype(np.float32)
    ours = upsample_ab(small, 37, 53)
    reference = F.interpolate(torch.from_numpy(small).permute(2, 0, 1)[None], size=(37, 53), mode="bilinear", align_corners=False)
    assert np.abs(ours - reference[0].permute(1, 2, 0).numpy()).max() < 1e-3


def test_strip_processing_matches_whole_image(monkeypatch):
    import chromafuse.color.fullres as engine

    rgb = synthetic_photo(50, 40, seed=12).astype(np.float32) / 255
    whole = engine.lightness_of(rgb)
    ab = np.random.default_rng(1).normal(scale=20, size=(50, 40, 2)).astype(np.float32)
    joined, joined8 = engine.join_lab(whole, ab), engine.join_lab(whole, ab, 8)
    monkeypatch.setattr(engine, "STRIP_PIXELS", 7 * 40)  # 7-row strips
    assert np.allclose(engine.lightness_of(rgb), whole, atol=1e-5)
    assert np.allclose(engine.join_lab(whole, ab), joined, atol=1e-6)
    assert np.array_equal(engine.join_lab(whole, ab, 8), joined8)
    assert np.abs(whole - rgb2lab(rgb)[..., 0]).max() < 1e-3


def test_unreadable_path_reason():
    from chromafuse.media.images import ImageReadError, read_image

    with pytest.raises(ImageReadError, match="cannot read file"):
        read_image(Path("/nonexistent/never.png"))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_lightness_table_matches_skimage(dtype):
    from chromafuse.color.fullres import lightness_of

    top = np.iinfo(dtype).max
    gray = np.linspace(0, top, 997).astype(dtype).reshape(1, -1)
    expected = rgb2lab(np.repeat((gray / top)[..., None], 3, axis=2))[..., 0]
    assert np.abs(lightness_of(gray) - expected).max() < 1e-3


def test_out_of_memory_retries_with_smaller_batches(tmp_path, tiny_checkpoint, monkeypatch):
    import torch

    from chromafuse import Colorizer

    for i in range(4):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), gray_of(synthetic_photo(32, 40, seed=30 + i)))
    colorizer = Colorizer.load(tiny_checkpoint)
    real = Colorizer.predict_ab
    sizes = []

    def limited(self, small):
        sizes.append(len(small))
        if len(small) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, small)

    monkeypatch.setattr(Colorizer, "predict_ab", limited)
    notes = []
    from chromafuse.inference import ColorizeOptions, run_colorize

    summary = run_colorize(colorizer, [str(tmp_path)], tmp_path / "out", ColorizeOptions(batch_size=4), on_note=notes.append)
    assert summary.count("done") == 4
    assert sizes[:3] == [4, 2, 1] and any("out of memory with a batch of 4" in n for n in notes)


def test_detail_area_averages_a_large_photo_before_the_model_sees_it():
    from chromafuse.color.fullres import render_lightness

    # stripes 2 px wide (period 4) on a 512 px photo: a render at 256 keeps them (1 px wide, full contrast);
    # detail 0.25 area-averages them to 64 px first, where each pixel is the mean of 8 columns: flat gray
    stripes = np.tile(np.repeat(np.array([20.0, 80.0], np.float32), 2), 128)[None].repeat(512, 0)
    sharp = render_lightness(stripes, 256)
    assert np.allclose(sharp[:, :4], [[20.0, 80.0, 20.0, 80.0]] * 256)
    np.testing.assert_allclose(render_lightness(stripes, 256, detail=0.25), 50.0, atol=1e-4)
    # a photo no larger than detail x render size (here 128 px) is shown as it was
    small = np.random.default_rng(1).uniform(0, 100, (100, 120)).astype(np.float32)
    assert np.array_equal(render_lightness(small, 256, detail=0.5), render_lightness(small, 256))
    # one side over the limit: only that side is averaged first (120 -> 64 columns), as cv2 would
    wide = np.random.default_rng(2).uniform(0, 100, (50, 120)).astype(np.float32)
    expected = cv2.resize(cv2.resize(wide, (64, 50), interpolation=cv2.INTER_AREA), (256, 256), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(render_lightness(wide, 256, detail=0.25), expected, atol=1e-5)


def test_the_colorizer_shows_its_model_the_detail_it_records(tiny_checkpoint, monkeypatch):
    from chromafuse import Colorizer

    seen = []
    colorizer = Colorizer.load(tiny_checkpoint, size=64, detail=0.5)
    original = Colorizer.predict_ab
    monkeypatch.setattr(
        Colorizer, "predict_ab", lambda self, small, *a, **k: seen.append(small) or original(self, small, *a, **k)
    )
    photo = np.random.default_rng(41).integers(0, 256, (128, 128), dtype=np.uint8)  # detail in every pixel
    out = colorizer.colorize(photo)
    Colorizer.load(tiny_checkpoint, size=64).colorize(photo)
    # only the model's input is softened: the output keeps the photo's own full-resolution lightness
    in_l, out_l = rgb2lab(np.repeat(photo[..., None], 3, axis=2))[..., 0], rgb2lab(out)[..., 0]
    assert np.median(np.abs(in_l - out_l)) < 0.5  # up to uint8 levels and gamut clipping
    assert seen[0].shape == seen[1].shape == (1, 64, 64)
    assert np.abs(np.diff(seen[0][0], axis=1)).mean() < 0.8 * np.abs(np.diff(seen[1][0], axis=1)).mean()  # softer
    with pytest.raises(ValueError, match="detail must be between 0.25 and 1"):
        Colorizer.load(tiny_checkpoint, detail=0.1)


def test_a_colorizer_with_other_render_settings_renders_as_one_loaded_with_them(tiny_checkpoint):
    from chromafuse import Colorizer

    base = Colorizer.load(tiny_checkpoint, precision="fp32")
    photo = gray_of(synthetic_photo(96, 80, seed=43))
    changed = base.with_render(64, 1.5, 0.5)  # what the web page's sliders do, without loading the model again
    assert changed.model is base.model and (base.size, base.saturation, base.detail) != (64, 1.5, 0.5)
    loaded = Colorizer.load(tiny_checkpoint, precision="fp32", size=64, saturation=1.5, detail=0.5)
    assert np.array_equal(changed.colorize(photo), loaded.colorize(photo))
    assert base.with_render(saturation=0.5).size == base.size  # None keeps a setting
    with pytest.raises(ValueError, match="detail must be between 0.25 and 1"):
        base.with_render(detail=0.1)


def test_saturation_scales_the_predicted_chroma(tiny_checkpoint):
    from chromafuse import Colorizer

    small = np.random.default_rng(0).uniform(0, 100, (2, 64, 64)).astype(np.float32)
    plain = Colorizer.load(tiny_checkpoint).predict_ab(small)
    doubled = Colorizer.load(tiny_checkpoint, saturation=2.0).predict_ab(small)
    assert np.allclose(doubled, 2 * plain, atol=1e-3)
    gray_out = Colorizer.load(tiny_checkpoint, saturation=0.0).colorize(gray_of(synthetic_photo(32, 32, seed=40)))
    assert (gray_out.max(axis=2).astype(int) - gray_out.min(axis=2)).max() <= 1
    with pytest.raises(ValueError, match="saturation must be between 0 and 4"):
        Colorizer.load(tiny_checkpoint, saturation=9)
