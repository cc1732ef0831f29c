import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from chromafuse.color.lab import AB_SCALE, denormalize_ab, gray_rgb_from_l, lab_to_rgb, normalize_ab, rgb_to_lab


def to_torch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.moveaxis(image, -1, -3).copy()).float()


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.moveaxis(tensor.numpy(), -3, -1)


def extreme_rgb() -> np.ndarray:
    corners = np.array([[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)], dtype=np.float64)
    near_black = np.array([[0.001, 0.002, 0.0], [0.04045, 0.04045, 0.04045], [0.0031, 0.0, 0.01]])
    return np.concatenate([corners, near_black])[None]  # (1, 11, 3)


@pytest.mark.parametrize("image", [np.random.default_rng(0).random((2, 24, 31, 3)), extreme_rgb()[None]])
def test_rgb_to_lab_matches_skimage(image):
    expected = rgb2lab(image)
    got = to_numpy(rgb_to_lab(to_torch(image)))
    assert np.abs(got - expected).max() < 1e-3


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    rng = np.random.default_rng(1)
    lab = np.stack([rng.uniform(0, 100, (32, 32)), rng.uniform(-128, 127, (32, 32)), rng.uniform(-128, 127, (32, 32))], -1)
    lab[0, :3] = [[0, 0, 0], [100, 0, 0], [50, 127, -128]]
    with pytest.warns(UserWarning):  # skimage warns about the negative-Z pixels it clips
        expected = lab2rgb(lab)
    got = to_numpy(lab_to_rgb(to_torch(lab)))
    assert np.abs(got - expected).max() < 1e-3


def test_round_trip_and_batch_shapes():
    rgb = torch.rand(2, 3, 3, 8, 8)
    lab = rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    assert torch.allclose(lab_to_rgb(lab), rgb, atol=1e-4)


def test_gray_from_lightness_is_neutral_and_keeps_l():
    lightness = torch.linspace(0, 100, 50).view(1, 1, 5, 10)
    rgb = gray_rgb_from_l(lightness)
    # neutral to well under one 8-bit level (D65 white is not exactly the matrix row sums)
    assert (rgb.amax(1) - rgb.amin(1)).max() < 1e-3
    assert torch.allclose(rgb_to_lab(rgb)[:, :1], lightness, atol=2e-3)


def test_gradients_are_finite_everywhere():
    rgb = torch.cat([torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2), torch.rand(1, 3, 2, 2)], dim=-1).double().requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb.clamp(0.01, 0.99).detach().requires_grad_(),), atol=1e-4)
    rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab = torch.tensor([[[[50.0]], [[20.0]], [[-30.0]]], [[[0.0]], [[0.0]], [[0.0]]]], dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lab_to_rgb, (lab[:1].detach().requires_grad_(),), atol=1e-4)
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_ab_normalisation_round_trip():
    ab = torch.tensor([-110.0, 0.0, 55.0])
    assert torch.allclose(normalize_ab(ab), ab / AB_SCALE)
    assert torch.allclose(denormalize_ab(normalize_ab(ab)), ab)


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
        rgb_to_lab(torch.rand(4, 8, 8))
