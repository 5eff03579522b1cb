"""docs/cli.md, generated from the parser: `python -m neurogrs.cli_reference > docs/cli.md`
(or `make docs`). tests/test_cli_reference.py regenerates it and fails when the file differs.

Deterministic: help is formatted at a fixed width (COLUMNS), whatever the terminal, and
nothing depends on where the checkout lives.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from neurogrs.cli_help import command_path, walk

__all__ = ["render", "WIDTH"]

WIDTH = 100
"""Terminal width the reference is formatted at."""

_HEADER = """\
# CLI reference

Generated from the parser by `python -m neurogrs.cli_reference > docs/cli.md` (or
`make docs`); do not edit by hand: `tests/test_cli_reference.py` fails when this file is
stale. The same text is what `neurogrs COMMAND --help` prints (at {width} columns). A guided
tour is in [quickstart.md](quickstart.md); the ideas behind the commands are in
[concepts.md](concepts.md).
"""


@contextmanager
def _columns(width: int) -> Iterator[None]:
    """argparse sizes help with shutil.get_terminal_size(), which reads COLUMNS first."""
    saved = {k: os.environ.get(k) for k in ("COLUMNS", "LINES")}
    os.environ["COLUMNS"], os.environ["LINES"] = str(width), "50"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _anchor(name: str) -> str:
    return name.replace(" ", "-")


def render(width: int = WIDTH) -> str:
    """The whole reference as Markdown."""
    from neurogrs.cli import build_parser

    with _columns(width):
        commands = [(("neurogrs",) + path, p) for path, p in walk(build_parser())]
        summaries = _summaries(commands)
        out = [_HEADER.format(width=width), "## Commands\n", "| command | what it does |",
               "|---|---|"]
        for path, _ in commands[1:]:
            name = command_path(path)
            what = summaries.get(path, "").replace("|", "\\|")
            out.append(f"| [`{name}`](#{_anchor(name)}) | {what} |")
        out.append("")
        for path, p in commands:
            name = command_path(path)
            out += [f'<a id="{_anchor(name)}"></a>', f"## `{name}`\n", "```text",
                    p.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def _summaries(commands) -> dict[tuple[str, ...], str]:
    """The one-line help each parent lists for its subcommands, by command path."""
    import argparse

    found = {}
    for path, parser in commands:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    found[path + (choice.dest,)] = choice.help or ""
    return found


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
