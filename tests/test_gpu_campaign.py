"""The GPU campaign script end to end on the CPU: pack a run, train from the pack, merge back, resume."""

import json
import runpy
import sys
from pathlib import Path

import torch
from test_train import tiny_config

import chromafuse
from chromafuse.models.checkpoint import read_checkpoint

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_campaign.py"


def _script(monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
    runpy.run_path(str(SCRIPT), run_name="__main__")


def test_pack_train_merge_and_resume(tmp_path, photo_folder, monkeypatch, capsys):
    from chromafuse.training import resume_config

    run = tmp_path / "run"
    chromafuse.train(
        tiny_config(photo_folder, run, tmp_path / "cache", steps=3, ema_decay=0.9, losses="l1=1,gan=0.05", sharpen=1.0)
    )
    pack, out = tmp_path / "pack", tmp_path / "out"
    _script(monkeypatch, "pack", str(run), str(pack), "--budget-mib", "0.5", "--val-count", "2")
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["source_step"] == 3 and manifest["losses"] == "l1=1,gan=0.05" and manifest["sharpen"] == 1.0
    assert 0 < manifest["train_images"] <= 9 and manifest["val_images"] == 2  # 12 photos, a quarter held out
    assert sum(f.stat().st_size for f in pack.iterdir()) < 0.5 * 1024 * 1024
    _script(
        monkeypatch, "train", str(pack), str(out), "--minutes", "0.05", "--batch", "4", "--device", "cpu", "--val-every", "0.5"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] >= 1 and summary["samples"] == 4 * summary["steps"]
    assert set(summary["after"]) == {"model", "ema"} and "target" in summary["before"]
    printed = capsys.readouterr().out
    assert "before: {" in printed and f'"samples_per_s": {summary["samples_per_s"]}' in printed
    for name in ("model_fp16.pt", "ema_fp16.pt", "best_fp16.pt"):
        saved = read_checkpoint(out / name)
        assert all(v.dtype == torch.float16 for v in saved.state_dict.values() if v.is_floating_point())
    gpu_weights = read_checkpoint(out / "best_fp16.pt")
    best = summary["best"]
    assert best["score"]["target"] >= max([summary["before"]["target"]] + [point["target"] for point in summary["curve"]])

    before = read_checkpoint(run / "last.ckpt").training_state["samples"]
    _script(monkeypatch, "merge", str(run), str(out))
    merged = read_checkpoint(run / "last.ckpt")
    assert merged.training_state["samples"] == before + best["samples"]
    assert all(torch.equal(merged.state_dict[k], v.float()) for k, v in gpu_weights.state_dict.items())
    assert merged.metadata["gpu_runs"][0]["steps"] == summary["steps"]
    assert (run / "last-before-gpu-step3.ckpt").exists()
    result = chromafuse.train(resume_config(run, steps=4), resume=True)
    assert result.steps == 4
