"""`neurogrs` command line: parse, then delegate.

Each area registers its own subcommands (`register(subparsers)`, and
`register_bench(bench_subparsers)` for `neurogrs bench ...`), so this file stays thin and
importing it never pulls in TensorFlow: heavy imports happen inside the handlers.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Sequence

from neurogrs.errors import NeurogrsError

__all__ = ["main", "run", "build_parser", "dispatch"]

# Modules that contribute subcommands, in the order `--help` lists them.
COMMAND_MODULES = (
    "neurogrs.cli_session",  # simulate, inspect, convert
    "neurogrs.cli_model",  # train, evaluate, info
    "neurogrs.pruning.cli",  # prune
    "neurogrs.codegen.cli",  # codegen
    "neurogrs.stream.cli",  # serve, listen, dashboard, keys
    "neurogrs.replay.cli",  # replay
    "neurogrs.bench.cli",  # bench inference, bench service
    "neurogrs.demo.cli",  # demo
)


def build_parser() -> argparse.ArgumentParser:
    from neurogrs import __version__

    parser = argparse.ArgumentParser(
        prog="neurogrs",
        description=(
            "Real-time neural decoding for closed-loop calcium-imaging experiments.\n"
            "Offline: simulate or load a session, train a decoder, export an artifact and a C "
            "library.\nOnline: serve predictions over ZeroMQ within a deadline, replay "
            "sessions, listen."
        ),
        epilog="New here? docs/quickstart.md walks the whole product; every command and option: "
               "docs/cli.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"neurogrs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = [importlib.import_module(name) for name in COMMAND_MODULES]
    for module in modules:
        if hasattr(module, "register"):
            module.register(sub)
    bench = sub.add_parser(
        "bench",
        help="benchmarks: inference engines side by side, the service end to end",
        description="Benchmarks that compare side by side in one run (ratios).",
    )
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT")
    bench_sub.required = True
    for module in modules:
        if hasattr(module, "register_bench"):
            module.register_bench(bench_sub)
    from neurogrs.cli_help import finish_help

    return finish_help(parser)  # defaults shown, one example per command (cli_examples.py)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    # users of the CLI see what to do, not where in our source the warning was raised
    return f"neurogrs: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser().parse_args(argv))


def dispatch(args: argparse.Namespace) -> int:
    """Run a parsed command: errors become one line on stderr and exit code 2."""
    previous, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return int(args.func(args) or 0)
    except NeurogrsError as exc:
        print(f"neurogrs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurogrs: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous


def run() -> None:  # console-script entry point
    sys.exit(main())


if __name__ == "__main__":
    run()
