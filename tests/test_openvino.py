"""The OpenVINO path: the same ONNX files compiled by OpenVINO give the torch colours; auto picks it on AMX CPUs."""

import cv2
import numpy as np
import pytest
import skimage.data
from typer.testing import CliRunner

from chromafuse import Colorizer
from chromafuse.cli import app
from tests.conftest import synthetic_photo, write_rgb

for _module in ("openvino", "onnxruntime", "onnxscript"):
    pytest.importorskip(_module, reason='the openvino extra is not installed (pip install "chromafuse[openvino]")')
runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    target = tmp_path_factory.mktemp("openvino") / "tiny.onnx"
    result = runner.invoke(app, ["export", str(tiny_checkpoint), str(target), "--name", "tiny-ov", "--render-size", "96"])
    assert result.exit_code == 0, result.output
    return target


def test_openvino_fp32_predicts_what_torch_fp32_predicts_at_any_batch(tiny_checkpoint, exported):
    torch_model = Colorizer.load(tiny_checkpoint, precision="fp32", size=96, backend="torch")
    model = Colorizer.load(exported, precision="fp32", backend="openvino")
    assert (model.backend, model.name, model.size, model.precision) == ("openvino", "tiny-ov", 96, "fp32")
    for batch in (1, 3):
        lightness = np.random.default_rng(batch).uniform(0, 100, (batch, 96, 96)).astype(np.float32)
        assert np.abs(model.predict_ab(lightness) - torch_model.predict_ab(lightness)).max() < 1e-3


def test_colorize_on_openvino_gives_the_torch_colours_and_bad_input_is_a_usage_error(
    tmp_path, tiny_checkpoint, exported, monkeypatch
):
    monkeypatch.setenv("CHROMAFUSE_CACHE", str(tmp_path / "cache"))
    photo = write_rgb(tmp_path / "in" / "p.png", cv2.cvtColor(synthetic_photo(70, 90, seed=9), cv2.COLOR_RGB2GRAY))
    for name, extra in (
        ("torch", ["-w", str(tiny_checkpoint), "--precision", "fp32", "--size", "96", "--backend", "torch"]),
        ("onnx-file", ["-w", str(exported), "--precision", "fp32", "--backend", "openvino"]),
        ("checkpoint", ["-w", str(tiny_checkpoint), "--precision", "fp32", "--backend", "openvino"]),
    ):
        result = runner.invoke(app, ["colorize", str(photo), "-o", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
    reference = cv2.imread(str(tmp_path / "torch" / "p.png")).astype(int)
    assert np.abs(cv2.imread(str(tmp_path / "onnx-file" / "p.png")).astype(int) - reference).max() <= 1
    assert len(list((tmp_path / "cache" / "onnx").glob("tiny-*.onnx"))) == 1  # the checkpoint's build, cached
    not_onnx = tmp_path / "fake.onnx"
    not_onnx.write_bytes(b"not a model")
    bad = runner.invoke(app, ["colorize", str(photo), "-o", str(tmp_path / "c"), "-w", str(not_onnx), "--backend", "openvino"])
    assert bad.exit_code == 2 and "fake.onnx: not an ONNX model" in bad.output
    wrong = runner.invoke(
        app,
        ["colorize", str(photo), "-o", str(tmp_path / "d"), "-w", str(exported), "--backend", "openvino", "--precision", "fp16"],
    )
    assert wrong.exit_code == 2 and "OpenVINO runs in auto, fp32, bf16" in wrong.output
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real_find_spec(name, *a))
    missing = runner.invoke(
        app, ["colorize", str(photo), "-o", str(tmp_path / "e"), "-w", str(exported), "--backend", "openvino"]
    )
    assert missing.exit_code == 2 and 'pip install "chromafuse[openvino]"' in missing.output
    assert not (tmp_path / "e" / "p.png").exists()


def test_auto_runs_the_bundled_model_on_openvino_where_the_cpu_has_amx(tmp_path, monkeypatch):
    import chromafuse.inference.backends as backends

    monkeypatch.setenv("CHROMAFUSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(backends, "cpu_has_amx_bf16", lambda: True)
    auto = Colorizer.load()
    assert auto.backend == "openvino" and auto.precision in ("bf16", "fp32")  # the plugin's choice: bf16 on AMX
    gray = cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2GRAY)
    fp32 = Colorizer.load(precision="fp32", backend="torch").colorize(gray).astype(int)
    difference = np.abs(auto.colorize(gray) - fp32)
    own_bf16 = np.abs(Colorizer.load(precision="bf16", backend="torch").colorize(gray) - fp32)
    # bf16 rounding, not other colours: no further from fp32 than torch's own bf16 on the same CPU. Measured mean / max:
    # session 11's AMX Xeon 0.50-0.74 / 7 (torch bf16 0.61-0.80 / 6); session 15's 1.46 / 11 (torch bf16 1.45 / 8)
    assert difference.mean() < max(1.2, 1.25 * own_bf16.mean()) and difference.max() <= 16
    assert Colorizer.load(precision="fp32").backend == "onnx"  # fp32 asked for: ONNX Runtime, as without AMX
    assert Colorizer.load(size=320).backend == "torch"  # the ONNX build renders at 256 only
    monkeypatch.setattr(backends, "cpu_has_amx_bf16", lambda: False)
    assert Colorizer.load().backend != "openvino"  # without AMX OpenVINO was at most 1.1x ONNX Runtime


@pytest.mark.parametrize(
    ("amx", "openvino", "onnx", "is_onnx", "bundled", "device", "precision", "expected"),
    [
        (True, True, True, False, True, "cpu", "auto", "openvino"),  # AMX: OpenVINO bf16, 2.4x torch bf16
        (True, True, True, True, False, "cpu", "bf16", "openvino"),  # an .onnx file asked for in bf16
        (True, True, True, False, True, "cpu", "fp32", "onnx"),  # fp32 asked for: ONNX Runtime
        (True, False, True, False, True, "cpu", "auto", "torch"),  # AMX without OpenVINO: torch bf16
        (False, True, True, False, True, "cpu", "auto", "onnx"),  # no AMX: ONNX Runtime, 2.1x torch fp32
        (False, True, False, False, True, "cpu", "auto", "torch"),  # no extra: torch, silently
        (False, True, True, False, False, "cpu", "auto", "torch"),  # another checkpoint or --size: torch
        (False, True, True, True, False, "cpu", "auto", "onnx"),
        (True, True, True, False, True, "cuda", "auto", "torch"),  # CUDA: torch
        (True, True, True, False, True, "cpu", "bf16", "torch"),  # bf16 asked for on a checkpoint: torch
    ],
)
def test_auto_picks_the_measured_fastest_backend(monkeypatch, amx, openvino, onnx, is_onnx, bundled, device, precision, expected):
    import torch

    import chromafuse.inference.backends as backends

    monkeypatch.setattr(backends, "cpu_has_amx_bf16", lambda: amx)
    monkeypatch.setattr(backends, "openvino_installed", lambda: openvino)
    monkeypatch.setattr(backends, "onnx_extra_installed", lambda: onnx)
    monkeypatch.setattr(backends, "resolve_precision", lambda p, d: "bf16" if p == "bf16" or (p == "auto" and amx) else "fp32")
    assert backends.auto_backend(is_onnx, bundled, torch.device(device), precision) == expected


def test_auto_falls_back_with_a_warning_when_openvino_cannot_build_the_model(tmp_path, monkeypatch):
    import chromafuse.inference.backends as backends
    import chromafuse.inference.colorizer as colorizer_module

    monkeypatch.setenv("CHROMAFUSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(colorizer_module, "auto_backend", lambda *args: "openvino")  # as on an AMX CPU

    def broken(path, precision):
        raise ValueError(f"{path}: OpenVINO cannot compile it (test)")

    monkeypatch.setattr(backends, "OpenVinoModel", broken)
    with pytest.warns(UserWarning, match="OpenVINO cannot compile it.*using torch"):
        colorizer = Colorizer.load()
    assert colorizer.backend == "torch"
    with pytest.raises(ValueError, match="OpenVINO cannot compile it"):
        Colorizer.load(backend="openvino")  # asked for by name: the error, not another backend


def test_calls_from_many_threads_each_get_their_own_photos_colours(exported):
    """serve's page and API call one model from several threads; each call must get its own photos back."""
    import threading

    model = Colorizer.load(exported, precision="fp32", backend="openvino")
    rng = np.random.default_rng(5)
    inputs = [rng.uniform(0, 100, (1 + i % 3, 96, 96)).astype(np.float32) for i in range(6)]
    expected = [model.predict_ab(x) for x in inputs]
    start, wrong = threading.Barrier(6), []

    def worker(k: int) -> None:
        start.wait()
        for round_ in range(20):
            i = (k + round_) % len(inputs)
            ab = model.predict_ab(inputs[i])
            if ab.shape != expected[i].shape or np.abs(ab - expected[i]).max() > 1e-4:
                wrong.append((k, i, ab.shape))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == [], f"{len(wrong)} of 120 calls got another call's colours, e.g. {wrong[:3]}"
