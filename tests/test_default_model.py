"""Regression check of the shipped weights on photos bundled with scikit-image (not in the training data)."""

import numpy as np
import pytest
import skimage.data

from chromafuse.evaluation.metrics import score_pair
from chromafuse.evaluation.runner import gray_of
from chromafuse.inference.colorizer import Colorizer, default_weights_path


def test_default_model_ships_small_and_in_fp16():
    path = default_weights_path()
    assert path.is_file(), "the package must ship its default model"
    assert path.stat().st_size < 25 * 1024 * 1024
    colorizer = Colorizer.load(device="cpu")
    assert all(v.dtype.is_floating_point is False or v.dtype.itemsize == 2 for v in colorizer.checkpoint.state_dict.values())
    for key in ("render_size", "name", "card"):
        assert key in colorizer.checkpoint.metadata


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_default_model_beats_the_gray_baseline(name):
    reference = getattr(skimage.data, name)()
    gray = gray_of(reference)
    colorized = Colorizer.load(device="cpu").colorize(gray)
    model, baseline = score_pair(colorized, reference), score_pair(gray, reference)
    assert model["ciede2000"] < baseline["ciede2000"] - 0.5
    assert model["colorfulness"] > baseline["colorfulness"] + 5.0
    # structure is the input's: the lightness is kept, so SSIM stays close to the baseline's
    assert model["ssim"] > baseline["ssim"] - 0.02
    assert np.abs(colorized.astype(int) - reference.astype(int)).mean() < 40
