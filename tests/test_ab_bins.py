"""The classification-over-ab-bins head: encoding, decoding, loss, prior, and training through it."""

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from chromafuse import load_checkpoint
from chromafuse.color.lab import rgb_to_lab
from chromafuse.models import create_model
from chromafuse.models.ab_bins import AbBins
from chromafuse.models.checkpoint import read_checkpoint
from chromafuse.training import train
from chromafuse.training.data import build_cache, resize_batch
from tests.test_train import tiny_config

TINY_FUSION = dict(
    decoder_channels=(16, 16, 16, 16),
    num_queries=8,
    query_dim=16,
    heads=2,
    colour_layers=1,
    refine_channels=8,
    pretrained_backbone=False,
)


def test_grid_has_bins_every_ten_units_from_minus_to_plus_110():
    bins = AbBins(bin_size=10.0)
    assert bins.count == 23 * 23
    assert bins.centers[0].tolist() == [-110.0, -110.0]
    assert bins.centers[1].tolist() == [-110.0, -100.0]  # b varies fastest
    assert bins.centers[23].tolist() == [-100.0, -110.0]


def test_soft_target_of_a_point_is_its_bilinear_split_between_four_centres():
    bins = AbBins(bin_size=10.0)
    ab = torch.tensor([15.0, -3.0]).reshape(1, 2, 1, 1)  # a between 10 and 20, b between -10 and 0
    index, weight = bins.soft_targets(ab)
    got = {tuple(bins.centers[i].tolist()): round(float(w), 6) for i, w in zip(index.flatten(), weight.flatten())}
    assert got == {(10.0, -10.0): 0.15, (10.0, 0.0): 0.35, (20.0, -10.0): 0.15, (20.0, 0.0): 0.35}


def test_soft_targets_reproduce_any_in_range_colour():
    bins = AbBins()
    ab = (torch.rand(2, 2, 5, 7) * 2 - 1) * 110
    ab[0, :, 0, 0] = 110.0  # the upper edge stays inside the grid
    index, weight = bins.soft_targets(ab)
    back = torch.einsum("bkhw,bkhwc->bchw", weight, bins.centers[index])
    assert torch.allclose(back, ab, atol=1e-3)
    assert torch.allclose(weight.sum(1), torch.ones(2, 5, 7))


def test_decode_gives_the_mode_when_sharp_and_the_mean_when_flat():
    bins = AbBins(temperature=0.38)
    logits = torch.zeros(1, bins.count, 1, 1)
    assert torch.allclose(bins.decode(logits), torch.zeros(1, 2, 1, 1), atol=1e-4)  # uniform: mean of a symmetric grid
    target = 23 * 17 + 4  # a = 60, b = -70
    logits[0, target] = 50.0
    assert torch.allclose(bins.decode(logits).flatten(), torch.tensor([60.0, -70.0]), atol=1e-3)
    # two equal peaks and nothing else: their midpoint (a mean, not a mode)
    two = torch.zeros(1, bins.count, 1, 1)
    two[0, 23 * 11 + 11] = two[0, 23 * 11 + 19] = 30.0  # (0, 0) and (0, 80)
    assert bins.decode(two, temperature=1.0)[0, 1].item() == pytest.approx(40.0, abs=0.1)


def test_temperature_moves_the_decoded_colour_towards_the_mode():
    bins = AbBins()
    logits = torch.zeros(1, bins.count, 1, 1)
    logits[0, 23 * 11 + 19] = 3.0  # (0, 80) most likely, everything else flat
    warm, cold = bins.decode(logits, 1.0)[0, 1].item(), bins.decode(logits, 0.2)[0, 1].item()
    assert 0 < warm < cold <= 80.0


def test_cross_entropy_matches_a_hand_computation_with_uniform_weights():
    bins = AbBins()
    torch.manual_seed(0)
    logits = torch.randn(1, bins.count, 1, 1)
    ab = torch.tensor([15.0, -3.0]).reshape(1, 2, 1, 1)
    log_q = torch.log_softmax(logits[0, :, 0, 0], 0)

    def at(a, b):
        return log_q[int((a + 110) / 10) * 23 + int((b + 110) / 10)]

    expected = -(0.15 * at(10, -10) + 0.35 * at(10, 0) + 0.15 * at(20, -10) + 0.35 * at(20, 0))
    assert bins.cross_entropy(logits, ab).item() == pytest.approx(expected.item(), rel=1e-5)


def test_cross_entropy_pools_the_target_to_the_logit_grid():
    bins = AbBins()
    logits = torch.randn(1, bins.count, 2, 2)
    ab = torch.zeros(1, 2, 4, 4)
    ab[:, 0, :2, :2] = 30.0  # top-left 2x2 block pools to a = 30
    pooled = ab.clone()[:, :, ::2, ::2]
    assert bins.cross_entropy(logits, ab).item() == pytest.approx(bins.cross_entropy(logits, pooled).item(), rel=1e-6)


def test_prior_weights_favour_rare_colours_and_average_one_under_the_prior():
    bins = AbBins(rebalance_mix=0.5)
    ab = torch.zeros(1, 2, 10, 10)
    ab[0, :, 0, :3] = 50.0  # 3 of 100 pixels are saturated
    bins.fit_prior(ab)
    weights = bins.class_weights
    common, rare = 23 * 11 + 11, 23 * 16 + 16  # (0, 0) and (50, 50)
    assert weights[rare] > 5 * weights[common]
    prior = torch.zeros(bins.count)
    prior[common], prior[rare] = 0.97, 0.03
    assert float((prior * weights).sum()) == pytest.approx(1.0, rel=1e-5)
    flat = AbBins(rebalance_mix=1.0)
    flat.fit_prior(ab)
    assert torch.allclose(flat.class_weights, torch.ones(flat.count))  # mix 1: plain cross-entropy


def test_bins_model_returns_ab_and_logits_at_stride_four():
    model = create_model("fusion-s", head="bins", **TINY_FUSION).eval()
    lightness = torch.rand(2, 1, 64, 96) * 100
    with torch.no_grad():
        ab, logits = model(lightness, with_logits=True)
    assert ab.shape == (2, 2, 64, 96) and logits.shape == (2, 23 * 23, 16, 24)
    assert ab.abs().max() <= 110.0
    assert torch.allclose(model(lightness), ab)


def test_unknown_model_argument_is_a_clear_error():
    with pytest.raises(ValueError, match="takes no argument 'head'"):
        create_model("resnet", head="bins")
    with pytest.raises(ValueError, match="head must be"):
        create_model("fusion-s", head="softmax", **TINY_FUSION)


def _fixed_batch_cross_entropy(model, photos) -> float:
    cache = build_cache([photos], 80, photos.parent / "evalcache", min_side=32)
    lab = rgb_to_lab(resize_batch(torch.from_numpy(np.array(cache.images)), 64))
    model.eval()
    with torch.no_grad():
        _, logits = model(lab[:, :1], with_logits=True)
    return AbBins().cross_entropy(logits, lab[:, 1:]).item()  # unweighted, the same for both models


def test_training_a_bins_model_lowers_its_cross_entropy(tmp_path, photo_folder):
    cfg = tiny_config(
        photo_folder,
        tmp_path / "run",
        tmp_path / "cache",
        arch="fusion-s",
        model_args={**TINY_FUSION, "head": "bins", "rebalance_mix": 0.9},
        losses="bins=1,l1=0.5",
        steps=30,
        val_every=30,
        freeze_backbone=-1,
    )
    torch.manual_seed(0)
    untrained = create_model("fusion-s", **cfg.model_args)
    result = train(cfg)
    trained, _ = load_checkpoint(result.run_dir / "last.ckpt")
    assert _fixed_batch_cross_entropy(trained, photo_folder) < 0.9 * _fixed_batch_cross_entropy(untrained, photo_folder)
    weights = trained.bins.class_weights
    assert not torch.allclose(weights, torch.ones_like(weights))  # the prior was fitted from the photos
    assert math.isfinite(result.best_metrics["psnr"])


def test_bins_loss_needs_a_bins_head(tmp_path, photo_folder):
    cfg = tiny_config(photo_folder, tmp_path / "run", tmp_path / "cache", losses="bins=1")
    with pytest.raises(ValueError, match="bins head"):
        train(cfg)


def test_init_from_a_regression_checkpoint_keeps_what_matches(tmp_path, photo_folder):
    base = tiny_config(
        photo_folder, tmp_path / "regress", tmp_path / "cache", arch="fusion-s", model_args=TINY_FUSION, steps=2, val_every=2
    )
    train(base)
    source = read_checkpoint(tmp_path / "regress" / "last.ckpt").state_dict
    bins_cfg = replace(
        base,
        out=tmp_path / "bins",
        model_args={**TINY_FUSION, "head": "bins"},
        losses="bins=1",
        steps=1,
        lr=1e-12,
        warmup_steps=1,
        init=tmp_path / "regress" / "last.ckpt",
        ema_decay=0.0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(bins_cfg)
    assert any("start fresh" in str(w.message) and "refine.4.weight" in str(w.message) for w in caught)
    tuned = read_checkpoint(tmp_path / "bins" / "last.ckpt").state_dict
    assert torch.allclose(tuned["up16.fuse.0.weight"], source["up16.fuse.0.weight"], atol=1e-6)
    assert tuned["refine.4.weight"].shape[0] == 23 * 23


def test_export_records_a_decoding_temperature_for_bins_models_only(tmp_path, tiny_checkpoint):
    from chromafuse.models.checkpoint import Checkpoint, export_checkpoint, save_checkpoint

    args = {**TINY_FUSION, "head": "bins"}
    model = create_model("fusion-s", **args)
    source = tmp_path / "bins.ckpt"
    save_checkpoint(source, Checkpoint("fusion-s", args, model.state_dict(), {}))
    export_checkpoint(source, tmp_path / "cold.pt", temperature=0.2)
    cold, _ = load_checkpoint(tmp_path / "cold.pt")
    assert cold.bins.temperature == 0.2
    lightness = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        _, logits = cold.float()(lightness, with_logits=True)
    assert torch.allclose(
        cold(lightness), torch.nn.functional.interpolate(cold.bins.decode(logits, 0.2), size=(64, 64), mode="bilinear")
    )
    with pytest.raises(ValueError, match="bins head"):
        export_checkpoint(tiny_checkpoint, tmp_path / "regress.pt", temperature=0.2)


def test_bins_logits_stay_float32_under_bf16_autocast():
    model = create_model("fusion-s", head="bins", **TINY_FUSION).eval()
    lightness = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ab, logits = model(lightness, with_logits=True)
    assert logits.dtype == torch.float32 and ab.dtype == torch.float32
