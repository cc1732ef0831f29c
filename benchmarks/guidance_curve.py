"""How much guidance helps: PSNR and CIEDE2000 with 0, 1, 2, 5, 10 and 20 colour hints taken from the truth
(fixed seed), and with each photo as its own reference, in one run of ``chromafuse evaluate``'s code.

    python benchmarks/guidance_curve.py ../shared/data/val/bsd100 [--weights W] [--points 0,1,2,5,10,20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chromafuse.evaluation.runner import EvaluateConfig, evaluate  # noqa: E402
from chromafuse.inference.colorizer import default_weights_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("references", type=Path)
    parser.add_argument("--weights", type=Path, default=None, help="a guided checkpoint (default: the bundled guided model)")
    parser.add_argument("--points", default="0,1,2,5,10,20")
    parser.add_argument("--protocol", default="256")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs = [(f"{n} points", {"hints_from_truth": n}) for n in map(int, args.points.split(","))]
    runs.append(("own photo as reference", {"reference_from_truth": True}))
    weights = args.weights or default_weights_path(guided=True)  # 0 points: the same model, given no hints
    rows = []
    for label, guidance in runs:
        started = time.perf_counter()
        cfg = EvaluateConfig(
            args.references, weights=(weights,), protocol=args.protocol, progress=False, seed=args.seed, **guidance
        )
        result = evaluate(cfg)
        summary = result.primary.summary()
        rows.append((label, summary, result.primary.name, time.perf_counter() - started))
        print(f"{label}: {summary['psnr']['mean']:.2f} dB, CIEDE2000 {summary['ciede2000']['mean']:.2f}", flush=True)
    base = rows[0][1]
    print(f"\nmodel: {rows[-1][2]}; {args.references} at protocol {args.protocol}; seed {args.seed}\n")
    print("| guidance | PSNR (dB) | gain | CIEDE2000 | colourfulness |")
    print("|---|---|---|---|---|")
    for label, summary, _, _ in rows:
        gain = summary["psnr"]["mean"] - base["psnr"]["mean"]
        print(
            f"| {label} | {summary['psnr']['mean']:.2f} | {gain:+.2f} | {summary['ciede2000']['mean']:.2f} "
            f"| {summary['colorfulness']['mean']:.1f} |"
        )


if __name__ == "__main__":
    main()
