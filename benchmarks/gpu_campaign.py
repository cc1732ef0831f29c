"""A few minutes on a GPU for the default-model campaign: pack here, train there, merge back here.

    # 1. here: a sample of the run's training photos, its held-out photos and its weights, 48 MiB
    python benchmarks/gpu_campaign.py pack ~/chromafuse-runs/campaign-0.2 gpu-pack
    # 2. on the GPU machine (PyTorch, OpenCV, scikit-image, Pillow; nothing else installed), from the repo root
    python benchmarks/gpu_campaign.py train gpu-pack "$OUT" --minutes 8
    # 3. here: the GPU's weights (and EMA, discriminator, samples seen) into the run; then resume it as usual
    python benchmarks/gpu_campaign.py merge ~/chromafuse-runs/campaign-0.2 OUT_FOLDER
    chromafuse train --resume ~/chromafuse-runs/campaign-0.2

The GPU side imports only chromafuse's models, colour and training pieces (no typer, rich, tqdm,
matplotlib or the backbone package: the perceptual network's weights travel in the pack). Photos are
kept on the GPU as uint8 and augmented there, so the loop waits on nothing but the model.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a bare checkout, not installed

from chromafuse.guidance.sampling import sample_hints  # noqa: E402
from chromafuse.models.checkpoint import Checkpoint, build_model, read_checkpoint, save_checkpoint  # noqa: E402
from chromafuse.models.device import autocast, resolve_device, resolve_precision, to_layout, uses_channels_last  # noqa: E402
from chromafuse.training.adversarial import Adversary  # noqa: E402
from chromafuse.training.config import parse_losses  # noqa: E402
from chromafuse.training.data import augment_batch, lab_batch, sharpen_lightness  # noqa: E402
from chromafuse.training.losses import LossNetworks, total_loss  # noqa: E402
from chromafuse.training.perceptual import PerceptualLoss  # noqa: E402
from chromafuse.training.setup import lr_factor, make_ema, make_optimizer  # noqa: E402
from chromafuse.training.validation import gray_baseline, validate  # noqa: E402

MIB = 1024 * 1024


# --- 1. pack (here) -------------------------------------------------------------------------------


def _encode(rgb: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".webp", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode WebP")
    return data.tobytes()


def _write_blob(folder: Path, name: str, blobs: list[bytes]) -> None:
    offsets = np.cumsum([0] + [len(b) for b in blobs]).tolist()
    (folder / f"{name}.bin").write_bytes(b"".join(blobs))
    (folder / f"{name}.json").write_text(json.dumps({"offsets": offsets}))


def pack(run: Path, folder: Path, budget_mib: float, quality: int, val_count: int, seed: int) -> None:
    from chromafuse.training import resume_config
    from chromafuse.training.setup import prepare_data

    if folder.exists():
        raise SystemExit(f"{folder} exists; remove it or choose another folder")
    cfg = resume_config(run)
    data = prepare_data(cfg, 0, 1)  # the run's own cache, split and sampling weights
    last = read_checkpoint(run / "last.ckpt")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ema = (last.training_state or {}).get("ema")
    start = {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")} if ema else last.state_dict
    save_checkpoint(tmp / "weights.pt", Checkpoint(last.arch, last.model_args, start, {}), half=True)  # the EMA: the better start
    if any(name == "perceptual" for name, _ in cfg.loss_terms):
        torch.save({k: v.half() for k, v in PerceptualLoss().state_dict().items()}, tmp / "perceptual.pt")
    # every k-th of the run's validation photos (in path order): their folders in proportion, not the first few
    every = np.unique(np.linspace(0, len(data.val_images) - 1, min(val_count, len(data.val_images))).round().astype(int))
    val = (data.val_images[every].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    _write_blob(tmp, "val", [_encode(image, 95) for image in val])

    rng = np.random.default_rng(seed)
    weights = data.weights.numpy() / data.weights.numpy().sum()
    order = rng.choice(len(data.train_idx), size=len(data.train_idx), replace=False, p=weights)  # by the run's weights
    probe = [len(_encode(data.cache.images[data.train_idx[i]], quality)) for i in order[:200]]
    left = budget_mib * MIB - sum(f.stat().st_size for f in tmp.iterdir())
    count = min(len(order), int(left * 0.97 / np.mean(probe)))
    blobs, total = [], 0
    for i in order[:count]:
        blob = _encode(data.cache.images[data.train_idx[i]], quality)
        if total + len(blob) > left:
            break
        blobs.append(blob)
        total += len(blob)
    _write_blob(tmp, "train", blobs)
    manifest = {
        "arch": last.arch,
        "model_args": last.model_args,
        "losses": cfg.losses,
        "size": cfg.size,
        "lr": cfg.lr,
        "backbone_lr_scale": cfg.backbone_lr_scale,
        "hint_lr_scale": cfg.hint_lr_scale,
        "weight_decay": cfg.weight_decay,
        "ema_decay": cfg.ema_decay,
        "freeze_backbone": cfg.freeze_backbone,
        "min_scale": cfg.min_scale,
        "sharpen": cfg.sharpen,
        "max_rotation": cfg.max_rotation,
        "grad_clip": cfg.grad_clip,
        "source_run": str(run),
        "source_step": last.training_state["step"],
        "source_samples": last.training_state["samples"],
        "train_images": len(blobs),
        "val_images": len(val),
        "webp_quality": quality,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder)
    size = sum(f.stat().st_size for f in folder.iterdir()) / MIB
    print(
        f"packed {len(blobs)} training photos ({cfg.size * 5 // 4} px, WebP q{quality}) and {len(val)} held-out photos "
        f"with {last.arch} weights from step {manifest['source_step']} into {folder}: {size:.1f} MiB"
    )


# --- 2. train (on the GPU machine) ----------------------------------------------------------------


def _decode_blob(folder: Path, name: str, workers: int) -> np.ndarray:
    blob = (folder / f"{name}.bin").read_bytes()
    offsets = json.loads((folder / f"{name}.json").read_text())["offsets"]

    def decode(i: int) -> np.ndarray:
        bgr = cv2.imdecode(np.frombuffer(blob[offsets[i] : offsets[i + 1]], np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    with ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(decode, range(len(offsets) - 1))))


def _score(model, val: torch.Tensor, baseline: dict, device, precision) -> dict:
    metrics = validate(model, val, device, precision, baseline=baseline)  # with the target score and the frontier
    return {k: round(v, 4) for k, v in metrics.items()}


def train(
    folder: Path, out: Path, minutes: float, batch: int, lr: float | None, warmup: int, device_name: str, val_every_s: float
) -> None:
    """Train for ``minutes`` of wall-clock time; every ``val_every_s`` score the EMA on the held-out photos and
    keep the best by the target score (a few thousand photos seen many times over can overfit)."""
    started = time.perf_counter()
    manifest = json.loads((folder / "manifest.json").read_text())
    device = resolve_device(device_name)
    precision = resolve_precision("auto", device)
    workers = os.cpu_count() or 1
    images = torch.from_numpy(_decode_blob(folder, "train", workers)).to(device)
    val = torch.from_numpy(_decode_blob(folder, "val", workers)).permute(0, 3, 1, 2).float().div(255.0)
    source = read_checkpoint(folder / "weights.pt")
    model = build_model(source, folder / "weights.pt").float().to(device)
    if uses_channels_last(device, precision):
        model.to(memory_format=torch.channels_last)
    if hasattr(model, "freeze_backbone"):
        model.freeze_backbone(manifest["freeze_backbone"])
    peak = lr if lr is not None else manifest["lr"] * (batch / 16) ** 0.5  # square-root scaling from batch 16
    manifest.setdefault("hint_lr_scale", 10.0)  # packs made before guided models
    settings = SimpleNamespace(**{**manifest, "lr": peak, "warmup_steps": warmup, "min_lr_ratio": 0.05})
    optimizer = make_optimizer(model, settings)
    ema = make_ema(model, manifest["ema_decay"])
    terms = parse_losses(manifest["losses"])
    names = {name for name, _ in terms}
    perceptual = None
    if "perceptual" in names:
        perceptual = PerceptualLoss(weights=torch.load(folder / "perceptual.pt", weights_only=True)).to(device)
    amp = functools.partial(autocast, device, precision)
    networks = LossNetworks(perceptual, Adversary(device, lr=peak) if "gan" in names else None, amp)
    baseline = gray_baseline(val)
    before = _score(model, val, baseline, device, precision)
    print(f"{len(images)} photos on {device} ({precision}), batch {batch}, peak lr {peak:.2e}, losses {manifest['losses']}")
    print(f"before: {before}  (gray: {baseline})", flush=True)

    generator = torch.Generator().manual_seed(0)
    budget, step, samples, last_print = minutes * 60.0, 0, 0, time.perf_counter()
    ema_model = ema.module if ema is not None else model
    best = {
        "score": before,
        "step": 0,
        "samples": 0,
        "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    curve, last_val = [], time.perf_counter()
    train_start = time.perf_counter()
    model.train()
    while (elapsed := time.perf_counter() - train_start) < budget:
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor(step, elapsed / budget, settings)
        picks = torch.randint(0, len(images), (batch,), generator=generator).to(device)
        lightness, ab = lab_batch(
            augment_batch(images[picks], manifest["size"], generator, settings.min_scale, settings.max_rotation), device
        )
        guidance = {}
        if getattr(model, "guided", False):  # a guided model trains with hints from the true colours, as on the CPU
            hints, reference = sample_hints(ab, generator)
            guidance = {"hints": to_layout(hints, device, precision), "reference": reference}
        seen = sharpen_lightness(lightness, manifest.get("sharpen", 0.0), generator)  # packs made before --sharpen: off
        with amp():
            pred = model(to_layout(seen, device, precision), **guidance)
        loss, parts = total_loss(terms, pred, ab, lightness, networks=networks)
        if not torch.isfinite(loss):
            raise SystemExit(f"loss became {float(loss)} at step {step + 1}; nothing written")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), manifest["grad_clip"])
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        if networks.adversary is not None:
            parts["disc"] = networks.adversary.step(lightness, pred.float(), ab, amp())
        step, samples = step + 1, samples + batch
        if time.perf_counter() - last_print > 30:
            last_print = time.perf_counter()
            terms_text = ", ".join(f"{k} {v:.4f}" for k, v in parts.items())
            print(
                f"step {step}: {samples / elapsed:.0f} samples/s, {samples} samples, loss {loss.item():.4f} ({terms_text})",
                flush=True,
            )
        if time.perf_counter() - last_val > val_every_s:
            last_val = time.perf_counter()
            score = _score(ema_model, val, baseline, device, precision)
            curve.append({"step": step, "samples": samples, **score})
            print(f"step {step}: held-out EMA {score}", flush=True)
            if score["target"] > best["score"]["target"]:
                state = {k: v.detach().cpu().clone() for k, v in ema_model.state_dict().items()}
                best = {"score": score, "step": step, "samples": samples, "state": state}
            model.train()
    train_s = time.perf_counter() - train_start
    after = {"model": _score(model, val, baseline, device, precision), "ema": _score(ema_model, val, baseline, device, precision)}
    if after["ema"]["target"] > best["score"]["target"]:
        best = {"score": after["ema"], "step": step, "samples": samples, "state": ema_model.state_dict()}
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "precision": precision,
        "batch": batch,
        "peak_lr": peak,
        "steps": step,
        "samples": samples,
        "train_s": round(train_s, 1),
        "samples_per_s": round(samples / train_s, 1),
        "photos": len(images),
        "source_step": manifest["source_step"],
        "before": before,
        "after": after,
        "best": {k: best[k] for k in ("score", "step", "samples")},
        "curve": curve,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    meta = {"gpu_run": summary}
    save_checkpoint(out / "model_fp16.pt", Checkpoint(source.arch, source.model_args, model.state_dict(), meta), half=True)
    save_checkpoint(out / "ema_fp16.pt", Checkpoint(source.arch, source.model_args, ema_model.state_dict(), meta), half=True)
    save_checkpoint(out / "best_fp16.pt", Checkpoint(source.arch, source.model_args, best["state"], meta), half=True)
    if networks.adversary is not None:
        torch.save(networks.adversary.state_dict(), out / "discriminator.pt")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


# --- 3. merge (here) ------------------------------------------------------------------------------


def merge(run: Path, folder: Path) -> None:
    """Continue the run from the GPU's best held-out weights (as its weights and its EMA) and its
    discriminator, counting the samples that led there; the old last.ckpt is kept beside it."""
    last_path = run / "last.ckpt"
    last = read_checkpoint(last_path)
    best = read_checkpoint(folder / "best_fp16.pt")
    summary = json.loads((folder / "summary.json").read_text())
    if best.arch != last.arch or best.state_dict.keys() != last.state_dict.keys():
        raise SystemExit(f"{folder}: the weights do not fit the run in {run}")
    if summary["source_step"] != last.training_state["step"]:
        raise SystemExit(f"{folder} was trained from step {summary['source_step']}, the run is at {last.training_state['step']}")
    weights = {k: v.float() for k, v in best.state_dict.items()}
    state = dict(last.training_state)
    if state.get("ema") is not None:
        state["ema"] = {
            "n_averaged": state["ema"]["n_averaged"] + summary["best"]["step"],
            **{f"module.{k}": v for k, v in weights.items()},
        }
    if (folder / "discriminator.pt").exists():
        state["adversary"] = torch.load(folder / "discriminator.pt", weights_only=True, map_location="cpu")
    state["samples"] += summary["best"]["samples"]
    metadata = {**last.metadata, "gpu_runs": [*last.metadata.get("gpu_runs", []), summary]}
    backup = run / f"last-before-gpu-step{state['step']}.ckpt"
    shutil.copy2(last_path, backup)
    save_checkpoint(last_path, Checkpoint(last.arch, last.model_args, weights, metadata, state))
    print(
        f"merged the GPU's best held-out weights ({summary['best']['samples']} of its {summary['samples']} samples, "
        f"target {summary['best']['score']['target']}) into {last_path}; samples now {state['samples']}; the old file is {backup}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="sample the run's photos and weights into a folder to carry")
    p.add_argument("run", type=Path)
    p.add_argument("folder", type=Path)
    p.add_argument(
        "--budget-mib", type=float, default=48.0, help="the pack's size; with the repo (~11 MiB) under the 64 MiB a call carries"
    )
    p.add_argument("--quality", type=int, default=80, help="WebP quality of the training photos")
    p.add_argument("--val-count", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train", help="train from a pack for a fixed wall-clock budget")
    t.add_argument("folder", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--minutes", type=float, default=8.0)
    t.add_argument("--batch", type=int, default=256)
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the run's, scaled by sqrt(batch / 16))")
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--device", default="auto")
    t.add_argument("--val-every", type=float, default=60.0, help="seconds between held-out scores of the EMA")
    m = sub.add_parser("merge", help="put a GPU run's weights into the run folder")
    m.add_argument("run", type=Path)
    m.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.run, args.folder, args.budget_mib, args.quality, args.val_count, args.seed)
    elif args.command == "train":
        train(args.folder, args.out, args.minutes, args.batch, args.lr, args.warmup, args.device, args.val_every)
    else:
        merge(args.run, args.folder)


if __name__ == "__main__":
    main()
