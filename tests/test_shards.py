"""--shard K/N covers every input exactly once, stays put when files are added; report merge joins the shards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from chromafuse.cli import app
from chromafuse.inference.shards import parse_shard, shard_of

runner = CliRunner()


def _photos(folder: Path, names: list[str]) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = int(hashlib.md5(name.encode()).hexdigest()[:6], 16)
        cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (24, 32), dtype=np.uint8))


def _run_shard(folder, out, k, n, report, checkpoint, *extra):
    return runner.invoke(
        app,
        [
            "colorize",
            str(folder),
            "-o",
            str(out),
            "-w",
            str(checkpoint),
            "--shard",
            f"{k}/{n}",
            "--report",
            str(report),
            "-q",
            *extra,
        ],
    )


def _taken(report: Path) -> set[str]:
    return {Path(f["input"]).as_posix() for f in json.loads(report.read_text())["files"]}


@pytest.mark.parametrize("text", ["3", "3/3", "-1/3", "a/b", "1/0", "1/"])
def test_bad_shards_are_refused_with_what_was_expected(text):
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)


def test_a_files_shard_is_its_relative_paths_hash():
    # independent reference: SHA-256 of the POSIX relative path, first 8 bytes big-endian, mod N
    for name in ["a.jpg", "sub/b.png", "ünï/c.tif"]:
        expected = int(hashlib.sha256(name.encode()).hexdigest()[:16], 16) % 7
        assert shard_of(Path(name), 7) == expected


def test_shards_cover_every_input_once_and_stay_put_when_files_are_added(tmp_path, tiny_checkpoint):
    folder = tmp_path / "in"
    names = [f"p{i:02d}.png" for i in range(14)] + [f"sub/q{i}.png" for i in range(6)]
    _photos(folder, names)
    reports = [tmp_path / f"r{k}.json" for k in range(3)]
    for k, report in enumerate(reports):
        result = _run_shard(folder, tmp_path / "out", k, 3, report, tiny_checkpoint)
        assert result.exit_code == 0, result.output
    shares = [_taken(r) for r in reports]
    everything = {f"{folder.as_posix()}/{name}" for name in names}
    assert set().union(*shares) == everything and sum(map(len, shares)) == len(names)  # once each
    for k, share in enumerate(shares):
        assert all(shard_of(Path(p).relative_to(folder), 3) == k for p in share)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == sorted(names)
    merged = runner.invoke(app, ["report", "merge", *map(str, reports), "-o", str(tmp_path / "run.json")])
    assert merged.exit_code == 0, merged.output
    record = json.loads((tmp_path / "run.json").read_text())
    assert (record["done"], record["failed"], record["missing_shards"], record["listed"]) == (20, 0, [], 20)

    added = [f"new{i}.png" for i in range(6)]
    _photos(folder, added)
    again = [tmp_path / f"again{k}.json" for k in range(3)]
    for k, report in enumerate(again):
        result = _run_shard(folder, tmp_path / "out", k, 3, report, tiny_checkpoint, "--skip-existing")
        assert result.exit_code == 0, result.output
        statuses = {Path(f["input"]).name: f["status"] for f in json.loads(report.read_text())["files"]}
        assert {n for n, s in statuses.items() if s == "skipped"} == {Path(p).name for p in shares[k]}  # nothing moved
        assert all(s == "done" for n, s in statuses.items() if n.startswith("new"))
    assert set().union(*map(_taken, again)) == everything | {f"{folder.as_posix()}/{name}" for name in added}


def test_merge_names_missing_shards_failed_files_and_changed_inputs(tmp_path, tiny_checkpoint):
    folder = tmp_path / "in"
    _photos(folder, [f"p{i}.png" for i in range(8)])
    (folder / "broken.png").write_bytes(b"not a png")
    reports = [tmp_path / f"r{k}.json" for k in range(2)]
    codes = [_run_shard(folder, tmp_path / "out", k, 2, r, tiny_checkpoint).exit_code for k, r in enumerate(reports)]
    assert sorted(codes) == [0, 1]  # the shard holding the broken file exits 1
    only_one = runner.invoke(app, ["report", "merge", str(reports[0]), "-o", str(tmp_path / "one.json")])
    assert only_one.exit_code == 1 and "missing shard(s) 1/2" in only_one.output
    both = runner.invoke(app, ["report", "merge", *map(str, reports), "-o", str(tmp_path / "both.json")])
    assert both.exit_code == 1 and "failed:" in both.output and "broken.png" in both.output
    assert json.loads((tmp_path / "both.json").read_text())["failed"] == 1

    (folder / "broken.png").unlink()
    _photos(folder, ["late.png"])
    holder = next(k for k, r in enumerate(reports) if any("broken" in f["input"] for f in json.loads(r.read_text())["files"]))
    rerun = tmp_path / "rerun.json"
    assert _run_shard(folder, tmp_path / "out", holder, 2, rerun, tiny_checkpoint, "--skip-existing").exit_code == 0
    mixed = runner.invoke(app, ["report", "merge", *map(str, reports), str(rerun), "-o", str(tmp_path / "mixed.json")])
    assert "the inputs changed between the shards' runs" in mixed.output
    assert f"shard {holder}/2 appears in 2 reports" in mixed.output
    assert runner.invoke(app, ["report", "merge", *map(str, reports), "-o", str(tmp_path / "both.json")]).exit_code == 2  # exists

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"files": [], "shard": {"index": 0, "count": 3, "listed": 0}}))
    split = runner.invoke(app, ["report", "merge", str(reports[0]), str(other), "-o", str(tmp_path / "x.json")])
    assert split.exit_code == 2 and "different splits" in split.output
    (tmp_path / "junk.json").write_text("{not json")
    junk = runner.invoke(app, ["report", "merge", str(tmp_path / "junk.json"), "-o", str(tmp_path / "y.json")])
    assert junk.exit_code == 2 and "junk.json" in junk.output and "not a JSON report" in junk.output


def test_merge_names_shards_that_rendered_with_different_settings(tmp_path, tiny_checkpoint):
    folder = tmp_path / "in"
    _photos(folder, [f"p{i}.png" for i in range(6)])
    reports = [tmp_path / f"r{k}.json" for k in range(2)]
    assert _run_shard(folder, tmp_path / "a", 0, 2, reports[0], tiny_checkpoint, "--saturation", "1.2").exit_code == 0
    assert _run_shard(folder, tmp_path / "a", 1, 2, reports[1], tiny_checkpoint, "--saturation", "1.2").exit_code == 0
    same = runner.invoke(app, ["report", "merge", *map(str, reports), "-o", str(tmp_path / "same.json")])
    assert same.exit_code == 0, same.output
    assert json.loads((tmp_path / "same.json").read_text())["saturation"] == 1.2
    assert _run_shard(folder, tmp_path / "b", 1, 2, reports[1], tiny_checkpoint, "--overwrite").exit_code == 0  # saturation 1
    mixed = runner.invoke(app, ["report", "merge", *map(str, reports), "-o", str(tmp_path / "mixed.json")])
    assert "different settings: saturation 1.0 / 1.2" in mixed.output  # said, as for different models; every file is done
    assert "saturation" not in json.loads((tmp_path / "mixed.json").read_text())
