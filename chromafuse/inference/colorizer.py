"""The Colorizer: L at full resolution -> L at render size -> model -> ab -> upsampled ab joined
with the original L -> RGB. Works on numpy images; folder runs (``folder_run``) take a Colorizer."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..color.fullres import join_small_ab, lightness_of, render_lightness
from ..guidance.guide import Guidance, load_reference
from ..guidance.hints import Hint, HintError, make_hint
from ..models.checkpoint import Checkpoint, check_render_settings, load_checkpoint
from ..models.device import autocast, resolve_device, resolve_precision, uses_channels_last
from .backends import BACKENDS, auto_backend, runtime_model
from .onnx_model import OnnxModel
from .openvino_model import OpenVinoModel


def default_weights_path(guided: bool = False) -> Path:
    """The bundled automatic model, or (``guided``) the bundled model that also takes hints."""
    return Path(__file__).parent.parent / "weights" / ("guided.pt" if guided else "default.pt")


class NoDefaultModelError(FileNotFoundError):
    pass


@dataclass
class Colorizer:
    model: torch.nn.Module | OnnxModel | OpenVinoModel  # called on L (B, 1, S, S), returns ab
    checkpoint: Checkpoint
    weights: Path
    device: torch.device
    precision: str
    size: int
    saturation: float = 1.0
    detail: float = 1.0  # the finest input detail the model is shown, as a fraction of the render size (1 = all)
    _guided_sibling: Colorizer | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def load(
        cls,
        weights: str | os.PathLike | None = None,
        device: str = "auto",
        precision: str = "auto",
        size: int | None = None,
        saturation: float | None = None,
        backend: str = "auto",
        guided: bool = False,
        detail: float | None = None,
    ) -> Colorizer:
        """Load a checkpoint (default: the model shipped with the package) for inference.

        ``backend``: 'torch'; 'onnx' (ONNX Runtime on the CPU: ``.onnx`` files from ``chromafuse export``, or
        a checkpoint's ONNX build, made once into the cache); 'openvino' (the same ONNX files compiled by
        OpenVINO for the CPU, bf16 on AMX CPUs); or 'auto': the fastest measured path (see ``backends``):
        OpenVINO on AMX-BF16 CPUs, ONNX Runtime on other CPUs, for ``.onnx`` files and the bundled model;
        torch otherwise and on CUDA.
        ``guided`` (without ``weights``): the bundled model that takes hints and a reference photo (torch).
        ``size``, ``saturation`` and ``detail`` default to what the weights record (see ``render_lightness``)."""
        path = Path(weights) if weights is not None else default_weights_path(guided)
        if weights is None and not path.exists():
            which = "guided" if guided else "default"
            raise NoDefaultModelError(f"no {which} model is installed with this chromafuse; pass --weights PATH to a checkpoint")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        is_onnx = path.suffix.lower() == ".onnx"
        if backend == "torch" and is_onnx:
            raise ValueError(f"{path}: an ONNX file runs on --backend onnx, openvino or auto, not torch")
        check_render_settings(size, saturation, detail)  # refused before any model is built
        torch_device = resolve_device(device)
        bundled = weights is None and not guided and size is None
        chosen = backend if backend != "auto" else auto_backend(is_onnx, bundled, torch_device, precision)
        model = None
        while chosen != "torch" and model is None:
            try:
                model = runtime_model(chosen, path, torch_device, precision, size)
            except ValueError as error:
                if backend != "auto" or (is_onnx and chosen == "onnx"):
                    raise
                fallback = "onnx" if is_onnx else "torch"  # auto: the next fastest path, said once
                warnings.warn(f"{error}; using {'ONNX Runtime' if is_onnx else 'torch'}", stacklevel=2)
                chosen = fallback
        if model is not None:
            checkpoint, resolved = model.checkpoint, getattr(model, "precision", "fp32")
        else:
            resolved = resolve_precision(precision, torch_device)
            model, checkpoint = load_checkpoint(path, torch_device)
            if uses_channels_last(torch_device, resolved):
                model.to(memory_format=torch.channels_last)
        render = size if size is not None else int(checkpoint.metadata.get("render_size") or getattr(model, "native_size", 256))
        chroma_gain = float(saturation if saturation is not None else checkpoint.metadata.get("saturation", 1.0))
        fineness = float(detail if detail is not None else checkpoint.metadata.get("detail", 1.0))
        check_render_settings(render, chroma_gain, fineness)
        return cls(model, checkpoint, path, torch_device, resolved, render, chroma_gain, fineness)

    @property
    def name(self) -> str:
        return self.checkpoint.metadata.get("name", self.checkpoint.arch)

    @property
    def backend(self) -> str:
        """What runs the model: 'torch', 'onnx' (ONNX Runtime) or 'openvino'."""
        return {OnnxModel: "onnx", OpenVinoModel: "openvino"}.get(type(self.model), "torch")

    def with_render(self, size: int | None = None, saturation: float | None = None, detail: float | None = None) -> Colorizer:
        """This colorizer (same model, loaded once) with another render size, saturation or detail; each is
        checked as ``load`` checks it, and None keeps the current value."""
        check_render_settings(size, saturation, detail)
        return replace(
            self,
            size=self.size if size is None else int(size),
            saturation=self.saturation if saturation is None else float(saturation),
            detail=self.detail if detail is None else float(detail),
        )

    def render_settings(self) -> dict:
        """How this colorizer renders, as reports and the API record it beside their figures: render size,
        saturation, detail, backend, device and (resolved) precision."""
        return {
            "render_size": self.size,
            "saturation": self.saturation,
            "detail": self.detail,
            "backend": self.backend,
            "device": str(self.device),
            "precision": self.precision,
        }

    @property
    def guided(self) -> bool:
        """Whether this model reads hints and a reference photo."""
        return bool(getattr(self.model, "guided", False))

    def for_guidance(self) -> Colorizer:
        """The colorizer that takes hints: this one if its model does; for the bundled automatic model, the
        bundled guided model (loaded once, same device, render size and saturation); otherwise a HintError."""
        if self.guided:
            return self
        if self.weights.resolve() != default_weights_path().resolve():
            raise HintError(
                f"{self.weights}: this model takes no hints or reference photo (train one with --model-arg guided=true)"
            )
        if self._guided_sibling is None:
            device = self.device.type if self.device.index is None else str(self.device)
            precision = self.precision if self.device.type != "cpu" or self.precision != "fp32" else "auto"
            try:
                sibling = Colorizer.load(None, device, precision, self.size, self.saturation, "torch", True, self.detail)
            except NoDefaultModelError as error:
                raise HintError(f"hints and reference photos need a guided model: {error}") from None
            self._guided_sibling = sibling
        return self._guided_sibling

    @torch.no_grad()
    def predict_ab(
        self, lightness_small: np.ndarray, hints: np.ndarray | None = None, reference: np.ndarray | None = None
    ) -> np.ndarray:
        """(B, S, S) L at render size -> (B, S, S, 2) ab in Lab units, times the saturation gain. A guided model
        also takes ``hints`` (B, 3, S, S) and ``reference`` (B, REFERENCE_DIM), as Guidance.arrays makes them."""
        batch = torch.from_numpy(np.ascontiguousarray(lightness_small, dtype=np.float32))[:, None].to(self.device)
        guidance = {}
        if hints is not None or reference is not None:
            if not self.guided:
                raise HintError(f"{self.weights}: this model takes no hints or reference photo")
            if hints is not None:
                guidance["hints"] = torch.from_numpy(np.ascontiguousarray(hints, dtype=np.float32)).to(self.device)
            if reference is not None:
                guidance["reference"] = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).to(self.device)
        if uses_channels_last(self.device, self.precision):
            batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            ab = self.model(batch, **guidance)
        ab = ab.float() * self.saturation if self.saturation != 1.0 else ab.float()
        return ab.permute(0, 2, 3, 1).cpu().numpy()

    def predict_guided(self, small: np.ndarray, guidance: list[Guidance | None], shapes: list[tuple[int, int]]) -> np.ndarray:
        """predict_ab for a batch where some images carry Guidance (``shapes``: each input's (height, width))."""
        if not any(guidance):
            return self.predict_ab(small)
        model = self.for_guidance()
        arrays = [(g or Guidance()).arrays(w, h, model.size) for g, (h, w) in zip(guidance, shapes)]
        return model.predict_ab(small, np.stack([a[0] for a in arrays]), np.stack([a[1] for a in arrays]))

    def colorize_lightness(
        self, lightness: list[np.ndarray], bit_depth: int | None = None, guidance: list[Guidance | None] | None = None
    ) -> list[np.ndarray]:
        """Full-resolution L images -> full-resolution RGB, one batch: float32 in [0, 1], or uint8 / uint16
        when bit_depth is 8 / 16; ``guidance``: one Guidance (or None) per image."""
        small = np.stack([render_lightness(lum, self.size, self.detail) for lum in lightness])
        ab_small = self.predict_guided(small, guidance or [None] * len(lightness), [lum.shape for lum in lightness])
        return [join_small_ab(lum, ab, bit_depth) for lum, ab in zip(lightness, ab_small)]

    def colorize(
        self,
        image: np.ndarray,
        hints: list[Hint | dict | tuple] | None = None,
        reference: str | os.PathLike | np.ndarray | None = None,
    ) -> np.ndarray:
        """Colorize one numpy image: (H, W) or (H, W, 3|4), uint8, uint16 or float in [0, 1].

        ``hints``: colour hints in the image's pixels, as Hint, ``{"x": 120, "y": 80, "color": "#b02a2a",
        "radius": 4}`` or ``(x, y, "#b02a2a")``; ``reference``: a colour photo (path or array) whose colours
        steer the result. Either uses the guided model (the bundled one, with the bundled default).
        Returns RGB (H, W, 3) in the input's dtype (alpha, if given, is appended unchanged).
        """
        pixels, alpha, kind = _split_alpha(image)
        bit_depth = {np.uint8: 8, np.uint16: 16}.get(kind)
        guidance = Guidance(
            tuple(_as_hint(h, n) for n, h in enumerate(hints or ())),
            load_reference(reference) if reference is not None else None,
        )
        guidance.check(pixels.shape[1], pixels.shape[0], "image")
        out = self.colorize_lightness([lightness_of(pixels)], bit_depth, [guidance])[0]
        return out if alpha is None else np.dstack([out, alpha])

    def colorize_paths(self, inputs, output_dir, **options):
        """Colorize files and folders into ``output_dir``; see :func:`chromafuse.inference.folder_run.run_colorize`."""
        from .folder_run import run_colorize
        from .plan import ColorizeOptions

        return run_colorize(self, [str(i) for i in inputs], Path(output_dir), ColorizeOptions(**options))

    def colorize_video(self, source, output, on_frames=None, **options):
        """Colorize one film into ``output`` (a file; or a folder, where it keeps its name), with steady colour
        and its audio and subtitles copied; ``options`` as :class:`chromafuse.inference.plan.ColorizeOptions`
        (``video_codec``, ``crf``, ``temporal``, ``overwrite``...). Returns its FileResult; a film that cannot be
        read or written raises :class:`chromafuse.media.video.VideoError` with the reason. Needs the video extra."""
        from .plan import ColorizeOptions
        from .video_run import colorize_video

        source, output = Path(source), Path(output)
        if output.is_dir():
            output = output / source.name
        return colorize_video(self, source, output, ColorizeOptions(**options), on_frames)


def _as_hint(hint: Hint | dict | tuple, number: int) -> Hint:
    where = f"hint {number}"
    if isinstance(hint, Hint):
        return make_hint(hint.x, hint.y, hint.color, hint.radius, where)
    if isinstance(hint, dict):
        return make_hint(hint.get("x"), hint.get("y"), hint.get("color"), hint.get("radius"), where)
    if isinstance(hint, (tuple, list)) and len(hint) in (3, 4):
        return make_hint(*hint, where=where)
    raise HintError(f"{where}: expected a Hint, a dict with x, y, color or a tuple (x, y, color), got {hint!r}")


def _split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, type]:
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {shape}")
    kind = image.dtype.type
    if kind not in (np.uint8, np.uint16) and not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected uint8, uint16 or float pixels, got {image.dtype}")
    if image.ndim == 2:
        return image, None, kind
    if image.shape[2] == 1:
        return image[..., 0], None, kind
    return image[..., :3], (image[..., 3] if image.shape[2] == 4 else None), kind
