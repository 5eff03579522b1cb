"""`python -m neurogrs.stream._entry serve|replay|listen ...`: the same handlers as
`neurogrs serve/replay/listen`, parsed without loading the other areas' commands.

The service benchmark spawns its processes through this, so that it measures only the
online half (and starts the same way whatever else the installed CLI registers).
"""
from __future__ import annotations

import argparse
import sys

from neurogrs.errors import NeurogrsError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from neurogrs.replay import cli as replay_cli
    from neurogrs.stream import cli as stream_cli

    parser = argparse.ArgumentParser(prog="neurogrs")
    sub = parser.add_subparsers(dest="command", required=True)
    stream_cli.register(sub)
    replay_cli.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NeurogrsError as exc:
        print(f"neurogrs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
