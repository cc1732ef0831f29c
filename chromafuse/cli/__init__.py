"""The ``chromafuse`` command line: options in, one typed config, one call into the core.

Each command lives in its own module and imports the core (torch, OpenCV, Gradio) only when it
runs, so ``chromafuse --help`` answers at once.
"""

from __future__ import annotations

import typer

from . import colorize, evaluate, report, serve, train, weights

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Colorize black-and-white photos; train and evaluate colorizers."
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"chromafuse {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Colorize black-and-white photos; train and evaluate colorizers."""


app.command()(train.train)
app.command()(colorize.colorize)
app.command()(evaluate.evaluate)
app.command()(weights.export)
app.command()(serve.serve)
app.command()(weights.models)
app.add_typer(report.app, name="report")


def main() -> None:
    app()
