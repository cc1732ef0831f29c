import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from chromafuse.evaluation.metrics import aggregate, colorfulness, score_pair
from tests.conftest import synthetic_photo


@pytest.fixture()
def pair():
    ref = synthetic_photo(40, 56, seed=0)
    noise = np.random.default_rng(0).integers(-20, 21, ref.shape)
    return np.clip(ref.astype(int) + noise, 0, 255).astype(np.uint8), ref


def test_psnr_mse_rmse_against_skimage_and_by_hand(pair):
    pred, ref = pair
    scores = score_pair(pred, ref)
    assert scores["mse"] == pytest.approx(mean_squared_error(ref, pred))
    assert scores["psnr"] == pytest.approx(peak_signal_noise_ratio(ref, pred, data_range=255))
    by_hand = np.sum((pred.astype(float) - ref) ** 2) / pred.size
    assert scores["mse"] == pytest.approx(by_hand) and scores["rmse"] == pytest.approx(np.sqrt(by_hand))
    assert scores["psnr"] == pytest.approx(10 * np.log10(255**2 / by_hand))


def test_ssim_uses_the_stated_skimage_settings(pair):
    pred, ref = pair
    expected = structural_similarity(ref, pred, channel_axis=-1, data_range=255, win_size=7, gaussian_weights=False)
    assert score_pair(pred, ref)["ssim"] == pytest.approx(expected)


def test_ciede2000_on_flat_colours_equals_the_single_colour_difference():
    a = np.full((4, 5, 3), (200, 30, 40), np.uint8)
    b = np.full((4, 5, 3), (180, 60, 50), np.uint8)
    single = deltaE_ciede2000(rgb2lab(a[:1, :1]), rgb2lab(b[:1, :1]))[0, 0]
    assert score_pair(b, a)["ciede2000"] == pytest.approx(single)
    assert 2 < single < 30  # a visible but moderate difference


def test_colorfulness_by_hand():
    # two pixels: (255, 0, 0) and (0, 0, 255): |R-G| = 255, 0 ; |(R+G)/2 - B| = 127.5, 255
    image = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    rg, yb = np.array([255.0, 0.0]), np.array([127.5, 255.0])
    expected = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    assert colorfulness(image) == pytest.approx(expected)
    assert colorfulness(np.full((3, 3, 3), 90, np.uint8)) == 0.0


def test_identical_images_and_mismatched_sizes(pair):
    _, ref = pair
    same = score_pair(ref, ref)
    assert same["psnr"] == 100.0 and same["mse"] == 0 and same["ssim"] == pytest.approx(1.0) and same["ciede2000"] == 0
    with pytest.raises(ValueError, match="size mismatch"):
        score_pair(ref[:-1], ref)


def test_aggregate_worst_follows_direction():
    rows = [{"psnr": 20.0, "mse": 5.0}, {"psnr": 30.0, "mse": 1.0}, {"psnr": 25.0, "mse": 3.0}]
    assert aggregate(rows, "psnr") == pytest.approx({"mean": 25.0, "median": 25.0, "std": np.std([20, 30, 25]), "worst": 20.0})
    assert aggregate(rows, "mse")["worst"] == 5.0


def test_training_colorfulness_matches_the_report_metric():
    import torch

    from chromafuse.training.losses import colorfulness as colorfulness_torch

    images = np.stack([synthetic_photo(24, 32, seed=s) for s in range(3)])
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    expected = [colorfulness(image) for image in images]
    assert np.allclose(colorfulness_torch(batch).numpy(), expected, atol=1e-2)
