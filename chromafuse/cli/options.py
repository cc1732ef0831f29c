"""What every command shares: the error console, usage errors, and KEY=VALUE option parsing."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def key_values(option: str, pairs: list[str], expected: str = "KEY=VALUE") -> dict[str, str]:
    """['a=1', 'b = x'] -> {'a': '1', 'b': 'x'}; a pair without '=' or a key is a usage error naming the option."""
    parsed = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"{option} {pair!r}: expected {expected}")
        parsed[key.strip()] = raw.strip()
    return parsed


def parse_folder_weights(pairs: list[str]) -> dict[str, float]:
    """['bsds500=4', 'caltech101=0.5'] -> {'bsds500': 4.0, 'caltech101': 0.5}."""
    expected = "NAME=FACTOR with a number"
    parsed = {}
    for name, raw in key_values("--folder-weight", pairs, expected).items():
        try:
            parsed[name] = float(raw)
        except ValueError:
            fail(f"--folder-weight {f'{name}={raw}'!r}: expected {expected}")
    return parsed


def parse_model_args(pairs: list[str]) -> dict:
    """['head=bins', 'temperature=0.4'] -> {'head': 'bins', 'temperature': 0.4} (numbers and booleans parsed)."""
    parsed: dict[str, object] = {}
    for key, raw in key_values("--model-arg", pairs).items():
        value: object = raw
        for convert in (int, float):
            try:
                value = convert(raw)
                break
            except ValueError:
                pass
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        parsed[key] = value
    return parsed
