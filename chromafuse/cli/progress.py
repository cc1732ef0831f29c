"""How a colorize run is shown: a rich progress bar and table, JSON lines, or nothing."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..inference.colorizer import Colorizer
from ..inference.folder_run import run_colorize
from ..inference.plan import ColorizeOptions, FileResult, RunSummary


class ColorizeReporter:
    def __init__(self, mode: str = "rich"):
        self.mode = mode
        self.console = Console(stderr=True, soft_wrap=True)

    def run(self, colorizer: Colorizer, inputs: list[str], output: Path, options: ColorizeOptions) -> RunSummary:
        if self.mode == "jsonl":
            summary = run_colorize(
                colorizer,
                inputs,
                output,
                options,
                on_result=self._print_json,
                on_note=lambda note: self._json({"event": "note", "message": note}),
                on_frames=self._json_frames(),
            )
            self._json({"event": "summary", **{k: v for k, v in summary.to_dict().items() if k != "files"}})
            return summary
        if self.mode == "quiet":
            summary = run_colorize(colorizer, inputs, output, options)
            for result in summary.results:
                if result.status == "failed":
                    self.console.print(f"[red]failed[/] {escape(result.input)}: {escape(result.reason)}", highlight=False)
            return summary
        return self._run_rich(colorizer, inputs, output, options)

    def _json(self, record: dict) -> None:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    def _print_json(self, result: FileResult) -> None:
        self._json({"event": "file", **asdict(result)})

    def _json_frames(self):
        """A film's progress as JSON lines, at most one a second."""
        last = [0.0]

        def on_frames(source: str, done: int, expected: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                self._json({"event": "frames", "input": source, "done": done, "expected": expected})

        return on_frames

    def _run_rich(self, colorizer, inputs, output, options) -> RunSummary:
        self.console.print(
            f"model [bold]{escape(colorizer.name)}[/] ({escape(str(colorizer.weights))}) on {colorizer.device}, "
            f"{colorizer.precision}, render {colorizer.size}px",
            highlight=False,
        )
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task("colorizing", total=None, rate="")

            def on_result(result: FileResult) -> None:
                if result.status == "failed":
                    progress.console.print(f"[red]failed[/] {escape(result.input)}: {escape(result.reason)}", highlight=False)
                elapsed = progress.tasks[0].elapsed or 0
                done = progress.tasks[0].completed + 1
                progress.update(task, advance=1, rate=f"{done / elapsed:.1f} img/s" if elapsed else "")

            films: dict[str, object] = {}

            def on_frames(source: str, done: int, expected: int) -> None:
                """A film: its own bar in frames, with frames/s and the time left."""
                if source not in films:
                    films[source] = progress.add_task(escape(Path(source).name), total=expected or None, rate="")
                film = films[source]
                elapsed = next(t for t in progress.tasks if t.id == film).elapsed or 0
                total = max(expected, done) if expected else None
                progress.update(film, completed=done, total=total, rate=f"{done / elapsed:.1f} frames/s" if elapsed else "")

            summary = run_colorize(
                colorizer,
                inputs,
                output,
                options,
                on_result=on_result,
                on_note=lambda note: progress.console.print(f"[yellow]note[/] {escape(note)}", highlight=False),
                on_frames=on_frames,
            )
        table = Table(title=None, show_header=True)
        for name in ("done", "skipped", "failed", "images/s", "seconds"):
            table.add_column(name, justify="right")
        table.add_row(
            str(summary.count("done")),
            str(summary.count("skipped")),
            str(summary.count("failed")),
            f"{summary.images_per_s:.2f}",
            f"{summary.seconds:.1f}",
        )
        self.console.print(table)
        colour = sum(r.was_color for r in summary.results if r.status == "done")
        if colour:
            self.console.print(
                f"{colour} input(s) were already in colour and were colorized from their lightness (--skip-color leaves them alone)"
            )
        return summary
