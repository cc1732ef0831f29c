"""Guided colorization: hints and reference photos, from parsing to the model, the CLI, Python, evaluate and the API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import synthetic_photo, write_rgb
from skimage.color import rgb2lab
from typer.testing import CliRunner

from chromafuse.cli import app
from chromafuse.guidance.guide import Guidance, load_reference
from chromafuse.guidance.hints import (
    Hint,
    HintError,
    ab_of_hex,
    hint_map,
    hints_from_truth,
    load_hints_file,
    parse_hint_option,
)
from chromafuse.guidance.reference import REFERENCE_DIM, reference_from_rgb, reference_vectors
from chromafuse.guidance.sampling import HintSampling, sample_hints
from chromafuse.inference.colorizer import Colorizer
from chromafuse.models import create_model, model_args_for
from chromafuse.models.checkpoint import Checkpoint, save_checkpoint

runner = CliRunner()


@pytest.fixture(scope="module")
def guided_checkpoint(tmp_path_factory):
    """A small-render guided fusion-s whose hint layers are perturbed from zero, so that hints change its output."""
    torch.manual_seed(0)
    args = model_args_for("fusion-s", pretrained_backbone=False, guided=True, native_size=64)
    model = create_model("fusion-s", **args)
    with torch.no_grad():
        for param in model.hint_inputs.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.2)
    path = tmp_path_factory.mktemp("guided") / "guided.ckpt"
    save_checkpoint(path, Checkpoint("fusion-s", args, model.state_dict(), {"name": "tiny-guided", "render_size": 64}))
    return path


@pytest.fixture
def gray_photo(tmp_path):
    rgb = synthetic_photo(48, 80, seed=3)
    gray = np.repeat(rgb.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    return write_rgb(tmp_path / "in" / "photo.png", gray)


def test_hint_colours_are_their_lab_ab_by_scikit_image():
    for color in ("#b02a2a", "#1f6fd0", "#7fbf3f"):
        rgb = np.array([[[int(color[i : i + 2], 16) for i in (1, 3, 5)]]], np.uint8)
        expected = rgb2lab(rgb)[0, 0, 1:]
        assert np.allclose(ab_of_hex(color), expected, atol=0.05)


def test_the_hint_option_and_its_errors_name_the_value():
    assert parse_hint_option("120,80:#B02A2A") == Hint(120.0, 80.0, "#b02a2a")
    assert parse_hint_option("1.5,2:b02a2a:6").radius == 6.0
    for bad, says in (("120:#b02a2a", "expected X,Y"), ("a,b:#b02a2a", "numbers"), ("1,2:#b02a2", "'#b02a2'")):
        with pytest.raises(HintError, match=says):
            parse_hint_option(bad)


def test_hints_files_are_checked_and_errors_name_the_file_and_entry(tmp_path):
    good = tmp_path / "hints.json"
    good.write_text(json.dumps({"sub/a.jpg": [{"x": 3, "y": 4, "color": "#00ff00", "radius": 2}], "b.png": []}))
    assert load_hints_file(good) == {"sub/a.jpg": [Hint(3.0, 4.0, "#00ff00", 2.0)], "b.png": []}
    cases = {
        "{not json": "not a JSON hints file",
        "[1, 2]": "expected an object",
        '{"a.jpg": {"x": 1}}': "must map to a list",
        '{"a.jpg": [{"x": 1, "y": 2}]}': "'a.jpg' hint 0: expected",
        '{"a.jpg": [{"x": 1, "y": 2, "color": "red"}]}': "colour 'red' is not #RRGGBB",
        '{"a.jpg": [{"x": "1", "y": 2, "color": "#ff0000"}]}': "x '1' is not a number",
        '{"a.jpg": [{"x": 1, "y": 2, "color": "#ff0000", "size": 3}]}': "unknown field",
    }
    for text, says in cases.items():
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(HintError, match=says) as error:
            load_hints_file(bad)
        assert str(bad) in str(error.value)


def test_a_hint_map_places_the_patch_at_the_render_size_by_hand():
    hint = Hint(50.0, 10.0, "#ff0000", radius=10.0)  # on a 200 x 40 input rendered at 20: centre (5, 5), radius (1, 5)
    out = hint_map([hint], width=200, height=40, size=20)
    a, b = ab_of_hex("#ff0000")
    rows, cols = np.nonzero(out[2])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 10, 4, 6)
    assert np.allclose(out[0][out[2] > 0], a / 110.0) and np.allclose(out[1][out[2] > 0], b / 110.0)
    assert out[:, out[2] == 0].sum() == 0.0


def test_the_reference_vector_is_a_normalised_ab_histogram_with_chroma_and_a_flag():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = (200, 40, 40)
    rgb[:, 16:] = (40, 80, 200)
    vector = reference_from_rgb(rgb)
    assert vector.shape == (REFERENCE_DIM,) and vector[-1] == 1.0
    histogram = vector[:-2]
    assert histogram.sum() == pytest.approx(1.0) and np.sort(histogram)[-2:] == pytest.approx([0.5, 0.5])
    lab = rgb2lab(rgb)
    expected_bins = {int((a + 96) // 16) * 12 + int((b + 96) // 16) for a, b in lab[0, [0, 31], 1:]}
    assert set(np.flatnonzero(histogram)) == expected_bins
    assert vector[-2] == pytest.approx(np.hypot(lab[..., 1], lab[..., 2]).mean() / 50.0, rel=1e-3)


def test_a_gray_reference_photo_is_refused_with_its_name(tmp_path):
    gray = write_rgb(tmp_path / "gray.png", np.full((20, 20, 3), 128, np.uint8))
    with pytest.raises(HintError, match="gray.png: the reference photo has no colour"):
        load_reference(gray)
    with pytest.raises(HintError, match="cannot use it as the reference photo"):
        load_reference(tmp_path / "missing.jpg")


def test_training_hints_carry_the_true_mean_colour_of_their_patches():
    ab = torch.from_numpy(rgb2lab(synthetic_photo(64, 64, seed=1))).permute(2, 0, 1)[None, 1:].float().repeat(64, 1, 1, 1)
    hints, reference = sample_hints(ab, torch.Generator().manual_seed(0), HintSampling(max_patch=1))
    assert hints.shape == (64, 3, 64, 64) and reference.shape == (64, REFERENCE_DIM)
    mask = hints[:, 2] > 0
    assert torch.allclose(hints[:, 0][mask] * 110.0, ab[:, 0][mask], atol=1e-3)  # 1-pixel patches: the pixel's own ab
    no_points = (~mask.flatten(1).any(1)).float().mean().item()
    no_reference = (reference[:, -1] == 0).float().mean().item()
    assert 0.3 < no_points < 0.7 and 0.3 < no_reference < 0.7  # both dropped about half the time
    again, _ = sample_hints(ab, torch.Generator().manual_seed(0), HintSampling(max_patch=1))
    assert torch.equal(hints, again)


def test_a_guided_model_from_automatic_weights_colorizes_exactly_as_before_and_others_refuse_hints():
    torch.manual_seed(0)
    automatic = create_model("fusion-s", pretrained_backbone=False).eval()
    guided = create_model("fusion-s", pretrained_backbone=False, guided=True).eval()
    guided.load_state_dict(automatic.state_dict(), strict=False)
    lightness = torch.rand(2, 1, 64, 64) * 100
    ab = torch.randn(2, 2, 64, 64) * 30
    hints, reference = sample_hints(ab, torch.Generator().manual_seed(0), HintSampling(p_no_points=0, p_no_reference=0))
    with torch.no_grad():
        assert torch.equal(automatic(lightness), guided(lightness, hints, reference))
        with pytest.raises(ValueError, match="takes no hints"):
            automatic(lightness, hints)


def test_python_hints_and_reference_change_the_colours_and_bad_hints_are_refused(guided_checkpoint, tmp_path):
    colorizer = Colorizer.load(guided_checkpoint, precision="fp32")
    image = synthetic_photo(48, 80, seed=3).mean(axis=2).astype(np.uint8)
    plain = colorizer.colorize(image)
    hinted = colorizer.colorize(image, hints=[(10, 20, "#ff0000"), {"x": 70, "y": 5, "color": "#0000ff", "radius": 4}])
    referenced = colorizer.colorize(image, reference=synthetic_photo(30, 30, seed=9))
    assert plain.shape == hinted.shape == (48, 80, 3)
    assert np.abs(plain.astype(int) - hinted).max() > 0 and np.abs(plain.astype(int) - referenced).max() > 0
    with pytest.raises(HintError, match=r"\(80, 5\) is outside the 80x48 image"):
        colorizer.colorize(image, hints=[(80, 5, "#ff0000")])
    with pytest.raises(HintError, match="hint 0: colour"):
        colorizer.colorize(image, hints=[(1, 5, "blue")])


def test_an_automatic_checkpoint_refuses_hints_naming_it(tiny_checkpoint):
    with pytest.raises(HintError, match="tiny.ckpt: this model takes no hints"):
        Colorizer.load(tiny_checkpoint).colorize(np.zeros((8, 8), np.uint8), hints=[(1, 1, "#ff0000")])


def test_cli_hints_match_python_and_bad_hints_stop_before_any_work(guided_checkpoint, gray_photo, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["colorize", str(gray_photo), "-o", str(out), "-w", str(guided_checkpoint), "--hint", "10,20:#ff0000", "--compare"]
    )
    assert result.exit_code == 0, result.output
    import cv2

    written = cv2.cvtColor(cv2.imread(str(out / "photo.png")), cv2.COLOR_BGR2RGB)
    expected = Colorizer.load(guided_checkpoint).colorize(cv2.imread(str(gray_photo)), hints=[(10, 20, "#ff0000")])
    assert np.abs(written.astype(int) - expected).max() <= 1 and (out / "photo-compare.jpg").exists()

    hints = tmp_path / "hints.json"
    failures = {
        ("--hint", "90,20:#ff0000"): "photo.png: the hint at (90, 20) is outside the 80x48 image",
        ("--hint", "1,2:#ff00"): "colour '#ff00' is not #RRGGBB",
        ("--hints", str(hints)): "hints for 'other.png': no such input",
    }
    hints.write_text(json.dumps({"other.png": [{"x": 1, "y": 1, "color": "#ff0000"}]}))
    for (option, value), says in failures.items():
        target = tmp_path / f"fail{len(option)}{len(value)}"
        result = runner.invoke(app, ["colorize", str(gray_photo), "-o", str(target), "-w", str(guided_checkpoint), option, value])
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
        assert not list(target.glob("**/*.png"))
    folder = runner.invoke(app, ["colorize", str(gray_photo.parent), "-o", str(tmp_path / "f"), "--hint", "1,1:#ff0000"])
    assert folder.exit_code == 2 and "--hint applies to one input file" in folder.output


def test_a_hints_file_steers_a_folder_by_relative_path_and_the_report_says_so(guided_checkpoint, tmp_path):
    for name in ("a/photo.png", "b/photo.png"):
        write_rgb(tmp_path / "in" / name, synthetic_photo(40, 40, seed=5))
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps({"a/photo.png": [{"x": 5, "y": 5, "color": "#00ff00"}]}))
    report = tmp_path / "run.json"
    args = ["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-w", str(guided_checkpoint), "--report", str(report)]
    result = runner.invoke(app, [*args, "--hints", str(hints), "--reference", str(tmp_path / "in" / "b" / "photo.png")])
    assert result.exit_code == 0, result.output
    notes = {f["input"].split("in/")[-1]: f["notes"] for f in json.loads(report.read_text())["files"]}
    assert "guided: 1 hint and the reference photo's colours" in notes["a/photo.png"]
    assert "guided: the reference photo's colours" in notes["b/photo.png"]
    ambiguous = tmp_path / "ambiguous.json"
    ambiguous.write_text(json.dumps({"photo.png": []}))
    result = runner.invoke(app, [*args[:3], str(tmp_path / "out2"), *args[4:6], "--hints", str(ambiguous)])
    assert result.exit_code == 2 and "matches several inputs" in result.output


def test_evaluate_with_hints_from_truth_is_deterministic_and_states_its_protocol(guided_checkpoint, tmp_path):
    refs = tmp_path / "refs"
    for i in range(3):
        write_rgb(refs / f"r{i}.png", synthetic_photo(64, 64, seed=20 + i))
    summaries = []
    for run in ("a", "b", "c"):
        out = tmp_path / f"{run}.json"
        extra = ["--hints-from-truth", "5"] if run != "c" else ["--reference-from-truth"]
        result = runner.invoke(app, ["evaluate", str(refs), "-w", str(guided_checkpoint), "--json", str(out), "-q", *extra])
        assert result.exit_code == 0, result.output
        summaries.append(json.loads(out.read_text()))
    assert summaries[0]["models"] == summaries[1]["models"]
    assert "5 hint(s) per image" in summaries[0]["settings"]["guidance"]
    assert "own global hint" in summaries[2]["settings"]["guidance"]
    rng = np.random.default_rng(0)
    rgb = synthetic_photo(32, 32, seed=1)
    points = hints_from_truth(rgb, 4, rng)
    lab = rgb2lab(rgb)
    for hint in points:  # each hint: the true mean ab of its 5 x 5 square
        x, y = int(hint.x), int(hint.y)
        patch = lab[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3, 1:].reshape(-1, 2).mean(0)
        assert np.allclose(hint.ab(), patch, atol=0.05)


def test_the_api_takes_hints_and_a_reference_and_answers_400_for_bad_ones(guided_checkpoint, tmp_path):
    pytest.importorskip("fastapi", reason='the web extra is not installed (pip install "chromafuse[web]")')
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from chromafuse.inference.batcher import DynamicBatcher
    from chromafuse.serve.api import api_router
    from chromafuse.serve.limits import ServeLimits

    colorizer = Colorizer.load(guided_checkpoint, precision="fp32")
    batcher = DynamicBatcher(colorizer)
    api = FastAPI()
    api.include_router(api_router(colorizer, batcher, ServeLimits()))
    photo = write_rgb(tmp_path / "p.png", synthetic_photo(48, 80, seed=3)).read_bytes()
    reference = write_rgb(tmp_path / "r.png", synthetic_photo(20, 20, seed=8)).read_bytes()
    with TestClient(api) as client:
        plain = client.post("/api/colorize", files={"image": ("p.png", photo)})
        hinted = client.post(
            "/api/colorize",
            files={"image": ("p.png", photo), "reference": ("r.png", reference)},
            data={"hints": json.dumps([{"x": 10, "y": 20, "color": "#ff0000"}])},
        )
        assert plain.status_code == hinted.status_code == 200 and plain.content != hinted.content
        bad = client.post(
            "/api/colorize", files={"image": ("p.png", photo)}, data={"hints": '[{"x": 500, "y": 1, "color": "#ff0000"}]'}
        )
        assert bad.status_code == 400 and "outside the 80x48 image" in bad.json()["error"]
        gray = write_rgb(tmp_path / "g.png", np.full((9, 9, 3), 90, np.uint8)).read_bytes()
        bad = client.post("/api/colorize", files={"image": ("p.png", photo), "reference": ("g.png", gray)})
        assert bad.status_code == 400 and "no colour" in bad.json()["error"]
    batcher.close()


def test_guidance_arrays_default_to_no_hints():
    hints, reference = Guidance().arrays(10, 10, 16)
    assert hints.shape == (3, 16, 16) and not hints.any() and reference.shape == (REFERENCE_DIM,) and not reference.any()
    assert reference_vectors(torch.zeros(1, 2, 4, 4))[0, -1] == 1.0  # a given reference, even gray, is flagged
