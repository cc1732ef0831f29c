"""The differentiable CIEDE2000 against scikit-image and Sharma et al.'s published test pairs."""

import csv

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000

import chromafuse
from chromafuse.color.delta_e import ciede2000
from chromafuse.models.checkpoint import read_checkpoint
from chromafuse.training.losses import total_loss
from tests.conftest import TINY_RESNET
from tests.test_train import _fixed_batch_loss, tiny_config


def lab_pairs(count: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    first = np.stack([rng.uniform(0, 100, count), rng.uniform(-100, 100, count), rng.uniform(-100, 100, count)], -1)
    second = first + rng.normal(0, 15, (count, 3))
    second[:20, 1:] = 0  # neutral against chromatic
    first[20:40, 1:] = 0
    first[40:60] = second[40:60]  # identical
    first[60:80, 1:] = second[60:80, 1:] = 0  # both neutral
    return first, second


def test_matches_skimage_including_neutral_and_identical_colours():
    first, second = lab_pairs()
    expected = deltaE_ciede2000(first, second)
    got = ciede2000(torch.from_numpy(first), torch.from_numpy(second), channel_dim=-1).numpy()
    assert np.abs(got - expected).max() < 1e-3


@pytest.mark.parametrize(
    "first, second, expected",  # Sharma, Wu, Dalal (2005), table 1, pairs 1, 3, 7, 17, 25
    [
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ],
)
def test_published_pairs(first, second, expected):
    assert float(ciede2000(torch.tensor(first), torch.tensor(second), channel_dim=-1)) == pytest.approx(expected, abs=1e-3)


def test_gradients_are_finite_at_neutral_and_identical_colours():
    first, second = (torch.from_numpy(x).float().requires_grad_() for x in lab_pairs(200))
    ciede2000(first, second, channel_dim=-1).sum().backward()
    assert torch.isfinite(first.grad).all() and torch.isfinite(second.grad).all()
    assert first.grad[100:].abs().sum() > 0


def test_ciede_loss_is_the_mean_difference_over_100():
    rng = np.random.default_rng(1)
    pred, true = (torch.from_numpy(rng.normal(0, 20, (2, 2, 8, 8))).float() for _ in range(2))
    lightness = torch.from_numpy(rng.uniform(0, 100, (2, 1, 8, 8))).float()
    loss, parts = total_loss((("ciede", 1.0),), pred, true, lightness)
    lab = [np.moveaxis(torch.cat([lightness, ab], 1).numpy(), 1, -1).astype(np.float64) for ab in (pred, true)]
    assert float(loss) == pytest.approx(deltaE_ciede2000(*lab).mean() / 100, abs=1e-5)


def test_training_on_the_ciede_loss_lowers_it_and_selects_by_it(tmp_path, photo_folder):
    cfg = tiny_config(
        photo_folder, tmp_path / "run", tmp_path / "cache", steps=40, val_every=10, losses="ciede=1", select_metric="ciede2000"
    )
    torch.manual_seed(0)
    untrained = chromafuse.create_model("resnet", **TINY_RESNET)
    assert chromafuse.train(cfg).steps == 40
    trained, _ = chromafuse.load_checkpoint(tmp_path / "run" / "last.ckpt")
    assert _fixed_batch_loss(trained, photo_folder, "ciede") < 0.8 * _fixed_batch_loss(untrained, photo_folder, "ciede")
    rows = [r for r in csv.DictReader((tmp_path / "run" / "log.csv").open()) if r["val_ciede2000"]]
    assert len(rows) == 4
    lowest = min(rows, key=lambda r: float(r["val_ciede2000"]))
    assert read_checkpoint(tmp_path / "run" / "best.ckpt").metadata["step"] == int(lowest["step"])
