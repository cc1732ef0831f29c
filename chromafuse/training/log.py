"""The training log: one CSV row per logged step or validation, and a PNG of the curves."""

from __future__ import annotations

import csv
import os
from pathlib import Path

COLUMNS = [
    "step",
    "epoch",
    "samples",
    "elapsed_s",
    "lr",
    "images_per_s",
    "loss",
    "val_psnr",
    "val_ssim",
    "val_ciede2000",
    "val_colorfulness",
    "val_target",
    "val_frontier",
    "val_frontier_gain",
]


class TrainLog:
    def __init__(self, path: Path, loss_names: list[str], resume_step: int | None = None):
        self.path = Path(path)
        rows = self.read() if resume_step is not None and self.path.exists() else []
        # On resume, rows past the checkpoint's step are dropped: the run will write them again.
        rows = [row for row in rows if resume_step is not None and int(row["step"]) <= resume_step]
        # A resumed run may change its losses: the earlier terms keep their columns.
        earlier = [column for column in (rows[0] if rows else {}) if column.startswith("loss_")]
        loss_columns = list(dict.fromkeys(earlier + [f"loss_{name}" for name in loss_names]))
        self.columns = COLUMNS[:7] + loss_columns + COLUMNS[7:]
        self._write_all(rows)

    def read(self) -> list[dict[str, str]]:
        with self.path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def _write_all(self, rows: list[dict]) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def append(self, row: dict) -> None:
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )

    def plot(self, png_path: Path) -> None:
        """Loss curves (left) and validation metrics (right) against step."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.read()
        fig, (ax_loss, ax_val, ax_target) = plt.subplots(1, 3, figsize=(16, 4))
        for column in [c for c in self.columns if c.startswith("loss")]:
            points = [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]
            if points:
                ax_loss.plot(*zip(*points), label=column)
        ax_loss.set(xlabel="step", ylabel="training loss", yscale="log", title="training")
        if ax_loss.lines:
            ax_loss.legend(fontsize=8)
        psnr = [(int(r["step"]), float(r["val_psnr"])) for r in rows if r.get("val_psnr")]
        ssim = [(int(r["step"]), float(r["val_ssim"])) for r in rows if r.get("val_ssim")]
        if psnr:
            ax_val.plot(*zip(*psnr), "o-", color="tab:blue", label="PSNR (dB)")
            ax_ssim = ax_val.twinx()
            ax_ssim.plot(*zip(*ssim), "s--", color="tab:orange", label="SSIM")
            ax_ssim.set_ylabel("SSIM")
        ax_val.set(xlabel="step", ylabel="validation PSNR (dB)", title="validation")
        for column, style, label in (("val_target", "o-", "target score"), ("val_frontier", "^--", "frontier (best gain)")):
            points = [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]
            if points:
                ax_target.plot(*zip(*points), style, label=label)
        for r in rows:  # the gain that reaches the frontier, beside each point
            if r.get("val_frontier_gain"):
                ax_target.annotate(f"x{float(r['val_frontier_gain']):g}", (int(r["step"]), float(r["val_frontier"])), fontsize=7)
        ax_target.set(xlabel="step", ylabel="smallest margin (1 = target met)", title="default-model target")
        if ax_target.lines:
            ax_target.legend(fontsize=8)
        fig.tight_layout()
        tmp = Path(png_path).with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=90)
        plt.close(fig)
        os.replace(tmp, png_path)
