"""``chromafuse report merge``: the shards' --report files -> one record of the whole run."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from .options import err, fail

app = typer.Typer(no_args_is_help=True, help="Work with --report files.")


@app.command()
def merge(
    reports: list[Path] = typer.Argument(..., help="The shards' --report files."),
    output: Path = typer.Option(..., "--output", "-o", help="Where the merged report goes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output if it exists."),
) -> None:
    """Merge shard reports into one; say which shards are missing and which files failed (exit 1 if any)."""
    from ..inference.shards import ReportError, merge_reports
    from ..media.files import check_output_file, write_atomic

    try:
        check_output_file(output, "--output", {p.resolve() for p in reports}, overwrite)
        merged = merge_reports(reports)
    except (ReportError, ValueError) as error:
        fail(str(error))
    write_atomic(output, json.dumps(merged.record, indent=2).encode())
    record = merged.record
    err.print(
        f"{len(record['reports'])} report(s), {record['shards']} shard(s): {record['done']} done, {record['skipped']} skipped, "
        f"{record['failed']} failed -> {escape(str(output))}",
        highlight=False,
    )
    for problem in merged.problems:
        err.print(f"[yellow]{escape(problem)}[/]", highlight=False)
    raise typer.Exit(0 if merged.complete else 1)
