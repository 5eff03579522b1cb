"""`python -m neurogrs.bench._entry serve|replay|listen ...`: the same handlers as
`neurogrs serve/replay/listen`, parsed without loading the other areas' commands.

The service benchmark spawns its processes through this, so that it measures only the
online half (and starts the same way whatever else the installed CLI registers).
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from neurogrs.cli import dispatch
    from neurogrs.replay import cli as replay_cli
    from neurogrs.stream import cli as stream_cli

    parser = argparse.ArgumentParser(prog="neurogrs")
    sub = parser.add_subparsers(dest="command", required=True)
    stream_cli.register(sub)
    replay_cli.register(sub)
    return dispatch(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
