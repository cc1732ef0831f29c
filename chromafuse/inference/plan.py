"""A folder run's plan and its record: the options, which output each input goes to (collisions and
overwrites refused before any work), and each file's result."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..guidance.guide import Guidance
from ..guidance.hints import Hint, HintError
from ..media.files import check_output_file
from ..media.images import DEFAULT_MAX_PIXELS, OUTPUT_EXTENSIONS, oriented_size
from ..media.listing import expand_inputs, is_video_path
from .shards import Shard

WRITABLE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}


@dataclass(frozen=True)
class ColorizeOptions:
    recursive: bool = True
    ext: str = "same"
    quality: int = 95
    suffix: str = ""
    skip_existing: bool = False
    overwrite: bool = False
    skip_color: bool = False
    compare: bool = False
    batch_size: int = 8
    workers: int = 2
    max_pixels: int = DEFAULT_MAX_PIXELS
    report: Path | None = None  # a JSON manifest of every file, written at the end
    video_codec: str | None = None  # videos: the encoder (default: H.264, VP9 for .webm)
    crf: int = 18  # videos: constant-quality factor (lower is better)
    temporal: bool = True  # videos: steady the colour over neighbouring frames
    shard: Shard | None = None  # take only this share of the inputs (--shard K/N)
    hints: dict[str, tuple[Hint, ...]] | None = field(default=None, compare=False)  # input name or relative path -> hints
    reference: np.ndarray | None = field(default=None, compare=False)  # one global hint for every input (--reference)

    def __post_init__(self):
        if self.ext not in ("same", *OUTPUT_EXTENSIONS):
            raise ValueError(f"--ext must be same, {', '.join(OUTPUT_EXTENSIONS)}; got {self.ext!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"--quality must be in 1..100, got {self.quality}")
        if self.batch_size < 1 or self.workers < 1:
            raise ValueError("--batch-size and --workers must be at least 1")
        if self.skip_existing and self.overwrite:
            raise ValueError("--skip-existing and --overwrite contradict each other: choose one")
        if not 0 <= self.crf <= 63:
            raise ValueError(f"--crf must be in 0..63, got {self.crf}")
        if "/" in self.suffix or "\\" in self.suffix:
            raise ValueError(f"--suffix must not contain a path separator, got {self.suffix!r}")


@dataclass
class FileResult:
    input: str
    output: str | None
    status: str  # done, skipped or failed
    reason: str = ""
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    was_color: bool = False
    notes: list[str] = field(default_factory=list)
    frames: int = 0  # videos: frames written
    model_seconds: float = 0.0  # videos: time spent in the model


@dataclass
class RunSummary:
    results: list[FileResult]
    seconds: float
    model: str
    weights: str
    settings: dict  # Colorizer.render_settings(): render size, saturation, detail, backend, device, precision
    shard: Shard | None = None
    listed: tuple[int, str] = (0, "")  # inputs found before the shard took its share: (count, digest of their paths)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def images_per_s(self) -> float:
        return self.count("done") / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "weights": self.weights,
            **self.settings,
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.images_per_s, 3),
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            **(
                {
                    "shard": {
                        "index": self.shard.index,
                        "count": self.shard.count,
                        "listed": self.listed[0],
                        "listing": self.listed[1],
                    }
                }
                if self.shard
                else {}
            ),
            "files": [asdict(r) for r in self.results],
        }


@dataclass
class Job:
    source: Path
    output: Path
    compare: Path | None
    video: bool = False  # a film: colorize_video, after the photos
    guidance: Guidance | None = None  # hints and / or a reference photo's colours


def output_path(relative: Path, out_dir: Path, options: ColorizeOptions) -> Path:
    """Where an input goes: its relative path under ``out_dir``, with ``--suffix``; photos take ``--ext``,
    videos keep their container."""
    if is_video_path(relative):
        return out_dir / relative.parent / f"{relative.stem}{options.suffix}{relative.suffix}"
    suffix = relative.suffix if options.ext == "same" else OUTPUT_EXTENSIONS[options.ext]
    if suffix.lower() not in WRITABLE_SUFFIXES:
        suffix = ".png"  # e.g. a file given directly with an unusual extension
    return out_dir / relative.parent / f"{relative.stem}{options.suffix}{suffix}"


def listing_of(relatives: list[Path]) -> tuple[int, str]:
    """How many inputs were listed, and a digest of their relative paths: shards that saw the same inputs agree."""
    digest = hashlib.sha256("\n".join(sorted(p.as_posix() for p in relatives)).encode("utf-8", "surrogateescape"))
    return len(relatives), digest.hexdigest()[:16]


def plan_jobs(inputs: list[str], out_dir: Path, options: ColorizeOptions) -> tuple[list[Job], list[FileResult], tuple[int, str]]:
    """Map inputs to outputs and refuse, before any work, collisions and overwrites; with ``options.shard``,
    only that shard's share. Returns the jobs, the results settled without work, and the listing (count, digest)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: the output must be a folder, and this is a file")
    problems: list[tuple[str, str]] = []
    pairs = expand_inputs(inputs, options.recursive, problems, exclude=out_dir, videos=True)
    if not pairs and not problems:
        raise ValueError(f"no image or video files found in {', '.join(inputs)}")
    listed = listing_of([relative for _, relative in pairs] + [Path(path) for path, _ in problems])
    listed_pairs = list(pairs)
    if options.shard is not None:
        pairs = [(path, relative) for path, relative in pairs if options.shard.takes(relative)]
        problems = [(path, reason) for path, reason in problems if options.shard.takes(path)]
    sources = {p.resolve() for p, _ in pairs}
    jobs, claimed = [], {}
    settled = [FileResult(path, None, "failed", reason) for path, reason in problems]  # said, and the run exits 1
    for source, relative in pairs:
        output = output_path(relative, out_dir, options)
        video = is_video_path(source)
        compare = output.with_name(f"{output.stem}-compare.jpg") if options.compare and not video else None
        for target in filter(None, (output, compare)):
            key = str(target.resolve()).casefold()
            if key in claimed and claimed[key] != source:
                raise ValueError(
                    f"{claimed[key]} and {source} would both be written to {target}; rename one or use --suffix/--ext"
                )
            claimed[key] = source
            if target.resolve() in sources:
                raise ValueError(f"{target} is an input file and would be overwritten; choose another output folder or --suffix")
        if output.exists() and options.skip_existing:
            settled.append(FileResult(str(source), str(output), "skipped", "output exists (--skip-existing)"))
            continue
        jobs.append(Job(source, output, compare, video))
    if options.report is not None:
        check_output_file(options.report, "--report", sources, options.overwrite)
        if str(options.report.resolve()).casefold() in claimed:
            raise ValueError(f"--report {options.report}: is where an output image goes; choose another file name")
    _attach_guidance(jobs, {source.resolve(): relative for source, relative in pairs}, options, listed_pairs)
    existing = [j.output for j in jobs if j.output.exists() or (j.compare and j.compare.exists())]
    if existing and not options.overwrite:
        raise ValueError(
            f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; "
            "pass --skip-existing to resume a run or --overwrite to replace them"
        )
    return jobs, settled, listed


def _attach_guidance(
    jobs: list[Job], relatives: dict[Path, Path], options: ColorizeOptions, listed: list[tuple[Path, Path]]
) -> None:
    """Give each job its hints (by relative path, or by file name when that names one input) and the reference;
    refuse, before any work, hints for no input, for two inputs, for a film, or outside their image."""
    if options.hints is None and options.reference is None:
        return
    by_name: dict[str, list[Path]] = {}
    known = set()
    for _, relative in listed:
        known.add(relative.as_posix())
        by_name.setdefault(relative.name, []).append(relative)
    for key in options.hints or {}:
        if key not in known and key not in by_name:
            raise HintError(f"hints for {key!r}: no such input (give its file name or its path relative to the input folder)")
        if key not in known and len(by_name[key]) > 1:
            names = ", ".join(p.as_posix() for p in by_name[key][:3])
            raise HintError(f"hints for {key!r}: the name matches several inputs ({names}); give the relative path")
    for job in jobs:
        relative = relatives[job.source.resolve()]
        hints = (options.hints or {}).get(relative.as_posix()) or (options.hints or {}).get(relative.name) or ()
        if hints and job.video:
            raise HintError(f"hints for {relative.as_posix()}: hints apply to photos; a film takes --reference")
        width, height = oriented_size(job.source) if hints else (0, 0)
        if width and height:  # an unreadable file fails later, with its reason
            for hint in hints:
                hint.check_inside(width, height, str(job.source))
        job.guidance = Guidance(tuple(hints), options.reference) if hints or options.reference is not None else None
