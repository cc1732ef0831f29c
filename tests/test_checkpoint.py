import pickle

import pytest
import torch

from chromafuse import load_checkpoint
from chromafuse.models import create_model, model_args_for
from chromafuse.models.checkpoint import Checkpoint, CheckpointError, read_checkpoint, save_checkpoint

ARGS = model_args_for("resnet", width=8, blocks=(1, 1))


def _saved(tmp_path, half=False):
    torch.manual_seed(0)
    model = create_model("resnet", **ARGS).eval()
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, Checkpoint("resnet", ARGS, model.state_dict(), {"metrics": {"psnr": 24.0}}), half=half)
    return model, path


def test_round_trip_rebuilds_the_same_model(tmp_path):
    model, path = _saved(tmp_path)
    loaded, checkpoint = load_checkpoint(path)
    assert checkpoint.arch == "resnet" and checkpoint.metadata["metrics"]["psnr"] == 24.0
    assert checkpoint.model_args["blocks"] == (1, 1)
    x = torch.rand(1, 1, 32, 32) * 100
    assert torch.equal(loaded(x), model(x))
    assert not loaded.training


def test_half_precision_storage_is_close(tmp_path):
    model, path = _saved(tmp_path, half=True)
    assert all(v.dtype == torch.float16 for v in read_checkpoint(path).state_dict.values() if v.is_floating_point())
    loaded, _ = load_checkpoint(path)
    x = torch.rand(1, 1, 32, 32) * 100
    assert (loaded(x) - model(x)).abs().max() < 0.5  # ab in Lab units


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


class RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_PICKLE",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, monkeypatch, protocol):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"format": "chromafuse-checkpoint", "payload": RunsCode()}, protocol=protocol))
    with (
        pytest.warns() if protocol > 2 else _no_warning(),
        pytest.raises(CheckpointError, match=r"evil.ckpt: not a chromafuse checkpoint \(refused"),
    ):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_torch_evil_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="not a chromafuse checkpoint"):
        read_checkpoint(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


@pytest.mark.parametrize(
    "content, message",
    [(b"not a checkpoint at all", "not a chromafuse checkpoint"), (b"", "not a chromafuse checkpoint")],
)
def test_garbage_files_are_refused(tmp_path, content, message):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_a_plain_state_dict_is_refused(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(create_model("resnet", **ARGS).state_dict(), path)
    with pytest.raises(CheckpointError, match="no 'chromafuse-checkpoint' marker"):
        read_checkpoint(path)


def test_keys_must_match_exactly(tmp_path):
    _, path = _saved(tmp_path)
    checkpoint = read_checkpoint(path)
    checkpoint.state_dict.pop(next(iter(checkpoint.state_dict)))
    save_checkpoint(path, checkpoint)
    with pytest.raises(CheckpointError, match=r"(?s)weights do not match .resnet.*Missing key"):
        load_checkpoint(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="nothing.ckpt: no such checkpoint file"):
        read_checkpoint(tmp_path / "nothing.ckpt")


def test_export_strips_training_state_and_halves(tmp_path):
    from chromafuse.models.checkpoint import export_checkpoint

    model, path = _saved(tmp_path)
    full = read_checkpoint(path)
    full.training_state = {"step": 3, "optimizer": {"state": {}, "param_groups": []}}
    save_checkpoint(path, full)
    small = export_checkpoint(path, tmp_path / "small.pt", render_size=128, name="tiny")
    exported = read_checkpoint(small)
    assert exported.training_state is None and exported.metadata["render_size"] == 128 and exported.metadata["name"] == "tiny"
    assert exported.metadata["metrics"]["psnr"] == 24.0
    assert small.stat().st_size < path.stat().st_size
    with pytest.raises(ValueError, match="overwrite its source"):
        export_checkpoint(small, small)
