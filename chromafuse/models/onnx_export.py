"""Export a colorizer to ONNX (dynamic batch, the render size fixed), checked against the torch model on real photos before
the file is written; the model's name, render size, saturation and card travel in its metadata.

Needs the ``onnx`` extra (onnx, onnxscript for torch's dynamo exporter, onnxruntime for the check).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from ..color.lab import rgb_to_lab
from .checkpoint import Checkpoint, build_model

ONNX_EXTRA = 'pip install "chromafuse[onnx]"'
MAX_AB_DIFFERENCE = 0.05  # Lab units; a larger difference between ONNX and torch refuses the export


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """Raise these loggers to ERROR for the duration (the exporter logs every operator it skips)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def require_onnx(*modules: str) -> None:
    """Raise ValueError naming the extra to install when any of ``modules`` is missing."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(f"ONNX needs {', '.join(missing)}: {ONNX_EXTRA}")


def _check_photos(size: int) -> torch.Tensor:
    """L at render size of scikit-image's colour photos (never trained on), (4, 1, size, size)."""
    import cv2
    import skimage.data

    photos = [
        cv2.resize(getattr(skimage.data, n)(), (size, size), interpolation=cv2.INTER_AREA)
        for n in ("astronaut", "chelsea", "coffee", "rocket")
    ]
    rgb = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).float() / 255.0
    return rgb_to_lab(rgb)[:, :1].contiguous()


def export_onnx(checkpoint: Checkpoint, target: Path, source: str = "checkpoint") -> tuple[Path, float]:
    """Write ``checkpoint`` as ONNX to ``target`` atomically; returns the path and the largest ab
    difference from the torch model on the check photos (Lab units)."""
    require_onnx("onnx", "onnxscript", "onnxruntime")
    import onnx
    import onnxruntime

    model = build_model(checkpoint, source).float().eval()
    size = int(checkpoint.metadata.get("render_size") or getattr(model, "native_size", 256))
    lightness = _check_photos(size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    chatter = io.StringIO()  # the exporter's progress lines would land in the middle of a colorize run
    with _quiet_loggers("torch.onnx", "torch.export", "onnxscript"), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            program = torch.onnx.export(
                model,
                (lightness[:2],),
                dynamo=True,
                input_names=["lightness"],
                output_names=["ab"],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
        expected = model(lightness).numpy()
    proto = program.model_proto
    metadata = {**checkpoint.metadata, "render_size": size}  # the graph takes this size only
    fields = {
        "arch": checkpoint.arch,
        "model_args": json.dumps(checkpoint.model_args),
        "metadata": json.dumps(metadata, default=str),
    }
    del proto.metadata_props[:]
    for key, value in fields.items():
        proto.metadata_props.add(key=key, value=value)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        onnx.save(proto, tmp)
        session = onnxruntime.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        got = session.run(None, {"lightness": lightness.numpy()})[0]
        difference = float(np.abs(got - expected).max())
        if not difference <= MAX_AB_DIFFERENCE:
            raise ValueError(f"{source}: the ONNX model differs from torch by {difference:.3g} ab units; not written")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target, difference
