"""The numpy/OpenCV full-resolution join against scikit-image's lab2rgb."""

import warnings

import numpy as np
import pytest
from skimage.color import lab2rgb

from chromafuse.color.srgb import lab_to_srgb


def lab_samples(seed: int, chroma: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lightness = rng.uniform(0, 100, (48, 64)).astype(np.float32)
    ab = rng.uniform(-chroma, chroma, (48, 64, 2)).astype(np.float32)
    lightness[0, :4] = [0, 100, 50, 0.5]  # black, white, mid-gray, near black
    ab[0, :4] = [[0, 0], [0, 0], [0, 0], [0, 0]]
    ab[1, :2] = [[127, -128], [-128, 127]]  # far out of gamut
    return lightness, ab


def reference(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about the negative-Z pixels it clips
        return lab2rgb(np.dstack([lightness, ab]).astype(np.float64))


@pytest.mark.parametrize("chroma", [20.0, 128.0])
def test_float_output_matches_skimage(chroma):
    lightness, ab = lab_samples(0, chroma)
    got = lab_to_srgb(lightness, ab)
    assert got.dtype == np.float32 and got.shape == (48, 64, 3)
    assert np.abs(got - reference(lightness, ab)).max() < 1e-4


@pytest.mark.parametrize("bit_depth, dtype", [(8, np.uint8), (16, np.uint16)])
def test_integer_output_is_within_one_level_of_skimage(bit_depth, dtype):
    lightness, ab = lab_samples(1, 128.0)
    scale = 2**bit_depth - 1
    expected = np.round(reference(lightness, ab) * scale).astype(np.int64)
    got = lab_to_srgb(lightness, ab, bit_depth)
    assert got.dtype == dtype
    difference = np.abs(got.astype(np.int64) - expected)
    assert difference.max() <= 1
    assert (difference == 0).mean() > 0.99  # off by one only on a rounding edge


def test_neutral_gray_levels_round_trip():
    levels = np.arange(256, dtype=np.float64) / 255
    # L of each sRGB gray level, from the sRGB curve and CIE's f(Y) by hand
    linear = np.where(levels > 0.04045, ((levels + 0.055) / 1.055) ** 2.4, levels / 12.92)
    lightness = np.where(linear > 0.008856, 116 * np.cbrt(linear) - 16, 903.3 * linear).astype(np.float32)[None]
    got = lab_to_srgb(lightness, np.zeros((1, 256, 2), np.float32), 8)
    assert np.array_equal(got[0, :, 0], np.arange(256)) and np.array_equal(got[..., 0], got[..., 2])


def test_bad_bit_depth_is_refused():
    with pytest.raises(ValueError, match="bit depth"):
        lab_to_srgb(np.zeros((2, 2), np.float32), np.zeros((2, 2, 2), np.float32), 12)
