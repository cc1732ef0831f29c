"""The ONNX path: export checked against torch, metadata carried, the same colours through ONNX Runtime."""

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from chromafuse import Colorizer
from chromafuse.cli import app
from tests.conftest import synthetic_photo, write_rgb

pytest.importorskip("onnxruntime", reason='the onnx extra is not installed (pip install "chromafuse[onnx]")')
pytest.importorskip("onnxscript", reason='the onnx extra is not installed (pip install "chromafuse[onnx]")')
runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    target = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = runner.invoke(
        app,
        ["export", str(tiny_checkpoint), str(target), "--name", "tiny-onnx", "--render-size", "96", "--card", "data=generated"],
    )
    assert result.exit_code == 0, result.output
    assert "largest ab difference" in result.output
    return target


def test_the_onnx_model_predicts_what_the_torch_model_predicts_at_any_batch(tiny_checkpoint, exported):
    torch_model = Colorizer.load(tiny_checkpoint, precision="fp32", size=96)
    onnx_model = Colorizer.load(exported, backend="onnx")
    assert onnx_model.name == "tiny-onnx" and onnx_model.size == 96 and onnx_model.precision == "fp32"
    assert onnx_model.checkpoint.metadata["card"] == {"data": "generated"}
    for batch in (1, 3):
        lightness = np.random.default_rng(batch).uniform(0, 100, (batch, 96, 96)).astype(np.float32)
        assert np.abs(onnx_model.predict_ab(lightness) - torch_model.predict_ab(lightness)).max() < 1e-3


def test_colorize_with_an_onnx_file_gives_the_torch_colours(tmp_path, tiny_checkpoint, exported):
    photo = write_rgb(tmp_path / "in" / "p.png", cv2.cvtColor(synthetic_photo(70, 90, seed=9), cv2.COLOR_RGB2GRAY))
    for name, extra in (
        ("torch", ["-w", str(tiny_checkpoint), "--precision", "fp32", "--size", "96"]),
        ("onnx", ["-w", str(exported), "--precision", "fp32"]),  # fp32: ONNX Runtime, not OpenVINO bf16
    ):
        result = runner.invoke(app, ["colorize", str(photo), "-o", str(tmp_path / name), *extra, "--backend", "auto"])
        assert result.exit_code == 0, result.output
    a, b = (cv2.imread(str(tmp_path / name / "p.png")).astype(int) for name in ("torch", "onnx"))
    assert a.shape == (70, 90, 3) and np.abs(a - b).max() <= 1


def test_backend_onnx_builds_a_checkpoint_once_and_mismatches_or_a_missing_runtime_are_usage_errors(
    tmp_path, tiny_checkpoint, exported, monkeypatch
):
    photo = write_rgb(tmp_path / "in" / "p.png", synthetic_photo(32, 32, seed=1))
    monkeypatch.setenv("CHROMAFUSE_CACHE", str(tmp_path / "cache"))
    onnx_for_pt = runner.invoke(
        app, ["colorize", str(photo), "-o", str(tmp_path / "a"), "-w", str(tiny_checkpoint), "--backend", "onnx"]
    )
    assert onnx_for_pt.exit_code == 0 and len(list((tmp_path / "cache" / "onnx").glob("tiny-*.onnx"))) == 1  # built once
    torch_for_onnx = runner.invoke(
        app, ["colorize", str(photo), "-o", str(tmp_path / "b"), "-w", str(exported), "--backend", "torch"]
    )
    assert torch_for_onnx.exit_code == 2 and "runs on --backend onnx" in torch_for_onnx.output
    not_onnx = tmp_path / "fake.onnx"
    not_onnx.write_bytes(b"not a model")
    bad = runner.invoke(app, ["colorize", str(photo), "-o", str(tmp_path / "c"), "-w", str(not_onnx)])
    assert bad.exit_code == 2 and "fake.onnx: not an ONNX model" in bad.output
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    import chromafuse.inference.backends as backends

    # Where the CPU has AMX and the openvino extra is there, auto runs an .onnx file on OpenVINO, with or without ONNX
    # Runtime; elsewhere ONNX Runtime is the only way to run it, and its absence is a usage error naming the extra.
    monkeypatch.setattr(backends, "cpu_has_amx_bf16", lambda: True)
    on_openvino = runner.invoke(app, ["colorize", str(photo), "-o", str(tmp_path / "d-amx"), "-w", str(exported)])
    assert on_openvino.exit_code == (0 if backends.openvino_installed() else 2)
    monkeypatch.setattr(backends, "cpu_has_amx_bf16", lambda: False)
    missing = runner.invoke(app, ["colorize", str(photo), "-o", str(tmp_path / "d"), "-w", str(exported)])
    assert missing.exit_code == 2 and 'pip install "chromafuse[onnx]"' in missing.output
    asked = runner.invoke(
        app, ["colorize", str(photo), "-o", str(tmp_path / "e"), "-w", str(tiny_checkpoint), "--backend", "onnx"]
    )
    assert asked.exit_code == 2 and 'pip install "chromafuse[onnx]"' in asked.output


def test_auto_runs_the_bundled_model_on_onnx_runtime_where_torch_would_run_fp32(tmp_path, monkeypatch):
    import chromafuse.inference.backends as backends
    import chromafuse.models.device as device
    from chromafuse.inference.onnx_model import OnnxModel

    monkeypatch.setenv("CHROMAFUSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(backends, "cpu_has_amx_bf16", lambda: False)  # whatever this machine has
    gray = cv2.cvtColor(synthetic_photo(60, 80, seed=2), cv2.COLOR_RGB2GRAY)
    torch_fp32 = Colorizer.load(precision="fp32", backend="torch")
    monkeypatch.setattr(device, "cpu_supports_bf16", lambda: False)  # a CPU like the AMD EPYCs without AVX512-BF16
    first = Colorizer.load()
    assert isinstance(first.model, OnnxModel) and first.name == torch_fp32.name and first.size == torch_fp32.size
    built = list((tmp_path / "cache" / "onnx").glob("default-*.onnx"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    again = Colorizer.load()
    assert isinstance(again.model, OnnxModel) and built[0].stat().st_mtime_ns == stamp  # built once, then reused
    assert np.abs(again.colorize(gray).astype(int) - torch_fp32.colorize(gray).astype(int)).max() <= 1
    assert not isinstance(Colorizer.load(backend="torch").model, OnnxModel)
    other_size = Colorizer.load(size=320)  # the ONNX build renders at 256 only: another size stays on torch
    assert not isinstance(other_size.model, OnnxModel) and other_size.size == 320
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real_find_spec(name, *a))
    monkeypatch.setenv("CHROMAFUSE_CACHE", str(tmp_path / "other"))
    assert not isinstance(Colorizer.load().model, OnnxModel)  # without the extra: torch, silently


def test_auto_keeps_torch_bf16_only_where_the_cpu_has_amx_and_openvino_is_absent(tmp_path, monkeypatch):
    import chromafuse.inference.backends as backends
    import chromafuse.models.device as device
    from chromafuse.inference.onnx_model import OnnxModel

    monkeypatch.setenv("CHROMAFUSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(device, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(backends, "cpu_has_amx_bf16", lambda: False)  # AVX512-BF16 only: ORT was faster
    assert isinstance(Colorizer.load().model, OnnxModel)
    monkeypatch.setattr(backends, "cpu_has_amx_bf16", lambda: True)  # AMX without OpenVINO: torch bf16
    monkeypatch.setattr(backends, "openvino_installed", lambda: False)
    with_amx = Colorizer.load()
    assert not isinstance(with_amx.model, OnnxModel) and with_amx.precision == "bf16"
