"""Runs larger than one machine: ``--shard K/N`` takes a deterministic share of the inputs, and
``merge_reports`` joins the shards' ``--report`` files into one record of the whole run.

A file's shard is a hash of its path relative to its input root (SHA-256, first 8 bytes, mod N), so it
depends on nothing but that path: the shards cover every input exactly once with no coordinator, and a
file added later goes to one shard without moving any other. K counts from 0, as Slurm array indices
(``--array=0-N-1``) and Kubernetes Indexed Jobs (``JOB_COMPLETION_INDEX``) do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePath

LOOK_SETTINGS = ("render_size", "saturation", "detail")  # what the shards' colours depend on besides the model
STATUS_RANK = {"done": 0, "skipped": 1, "failed": 2}  # a file in two reports (a shard rerun) keeps its best result


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def takes(self, relative: PurePath | str) -> bool:
        return shard_of(relative, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """'K/N' -> Shard(K, N), with 0 <= K < N; anything else is a ValueError that says what was expected."""
    left, slash, right = str(text).partition("/")
    if not slash or not left.strip().isdigit() or not right.strip().isdigit():
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 0/4 (K counts from 0)")
    index, count = int(left), int(right)
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: K must be in 0..N-1 and N at least 1")
    return Shard(index, count)


def shard_of(relative: PurePath | str, count: int) -> int:
    key = PurePath(relative).as_posix().encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % count


class ReportError(ValueError):
    pass


@dataclass
class MergedRun:
    record: dict
    problems: list[str] = field(default_factory=list)  # missing shards, changed inputs, failed files

    @property
    def complete(self) -> bool:
        return not self.record["missing_shards"] and self.record["failed"] == 0


def _read(path: Path) -> dict:
    try:
        record = json.loads(Path(path).read_text())
    except OSError as error:
        raise ReportError(f"{path}: cannot read: {error.strerror or error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: not a JSON report ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("files"), list):
        raise ReportError(f"{path}: not a chromafuse --report file (no 'files' list)")
    return record


def _shard_record(record: dict) -> dict:
    """A report's shard fields; a run without --shard is the one shard of one."""
    return record.get("shard") or {"index": 0, "count": 1, "listed": len(record["files"])}


def merge_reports(paths: list[Path]) -> MergedRun:
    """One record for a run split into shards; says which shards are missing, whether the inputs changed
    between the shards' runs, and which files failed."""
    if not paths:
        raise ReportError("give at least one --report file to merge")
    records = [(Path(p), _read(p)) for p in paths]
    shards = [_shard_record(r) for _, r in records]
    counts = {shard["count"] for shard in shards}
    if len(counts) > 1:
        raise ReportError(
            "the reports come from different splits: "
            + ", ".join(f"{p} is shard {shard['index']}/{shard['count']}" for (p, _), shard in zip(records, shards))
        )
    count = counts.pop()
    problems: list[str] = []
    seen: dict[int, list[str]] = {}
    listings: dict[str, tuple[int, str]] = {}  # report -> (files listed, digest of their paths)
    files: dict[str, dict] = {}
    for (path, record), shard in zip(records, shards):
        seen.setdefault(shard["index"], []).append(str(path))
        listings[f"{path} (shard {shard['index']})"] = (shard["listed"], shard.get("listing", ""))
        for item in record["files"]:
            known = files.get(item["input"])
            if known is None or STATUS_RANK.get(item["status"], 3) < STATUS_RANK.get(known["status"], 3):
                files[item["input"]] = item
    missing = [k for k in range(count) if k not in seen]
    if missing:
        problems.append(f"missing shard(s) {', '.join(f'{k}/{count}' for k in missing)}: their files are in no report")
    for index, reports in sorted(seen.items()):
        if len(reports) > 1:
            problems.append(
                f"shard {index}/{count} appears in {len(reports)} reports ({', '.join(reports)}): best result per file kept"
            )
    if len(set(listings.values())) > 1:
        problems.append(
            "the inputs changed between the shards' runs (files listed: "
            + ", ".join(f"{n} by {report}" for report, (n, _) in listings.items())
            + "): rerun every shard on the same inputs (--skip-existing keeps what is done)"
        )
    results = sorted(files.values(), key=lambda item: item["input"])
    failed = [item for item in results if item["status"] == "failed"]
    problems += [f"failed: {item['input']}: {item.get('reason', '')}" for item in failed]
    models = sorted({r.get("model", "?") for _, r in records})
    if len(models) > 1:
        problems.append(f"the shards used different models: {', '.join(models)}")
    looks = {key: sorted({str(r.get(key, "?")) for _, r in records}) for key in LOOK_SETTINGS}
    differing = [f"{key} {' / '.join(values)}" for key, values in looks.items() if len(values) > 1]
    if differing:  # device, backend and precision may differ between machines; what the colours look like may not
        problems.append(f"the shards rendered with different settings: {'; '.join(differing)}")
    record = {
        "model": models[0] if len(models) == 1 else models,
        **{key: records[0][1].get(key) for key in LOOK_SETTINGS if len(looks[key]) == 1},
        "shards": count,
        "reports": [str(p) for p, _ in records],
        "missing_shards": missing,
        "listed": max(n for n, _ in listings.values()),
        "seconds_total": round(sum(r.get("seconds", 0.0) for _, r in records), 3),
        "seconds_longest_shard": round(max(r.get("seconds", 0.0) for _, r in records), 3),
        "done": sum(item["status"] == "done" for item in results),
        "skipped": sum(item["status"] == "skipped" for item in results),
        "failed": len(failed),
        "problems": problems,
        "files": results,
    }
    return MergedRun(record, problems)
