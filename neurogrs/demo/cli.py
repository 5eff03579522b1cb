"""`neurogrs demo` (and `python -m neurogrs.demo`, `make demo`): parse, then delegate to
`neurogrs.demo.run.run_demo`. Importing this module never imports TensorFlow."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["register", "main"]

_DESCRIPTION = """\
The whole product on one session, end to end: simulate a session (or read yours with
--session) -> train the candidate decoders -> prune them (+ Stage T/Q) -> select one ->
generate and compile its C library -> time original and pruned model in the C engine ->
start the service (C engine, loopback, free ports) -> replay the held-out test part with
credit-based flow control (every frame answered) -> listen and score online -> print a
table and write report.html (self-contained, opens offline) and results.json."""

_EPILOG = """\
example:
  neurogrs demo --out demo-out
  neurogrs demo --session ../shared/data/nelpy_linear_track/nelpy_linear_track.npz --blocks 5 \\
      --out nelpy-demo
"""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from neurogrs.cli_session import add_session_options
    from neurogrs.demo.settings import DemoSettings

    d = DemoSettings.__dataclass_fields__
    dv = {k: f.default for k, f in d.items()}
    p.add_argument("--session", metavar="FILE", default=None,
                   help="your session file (read with the session options below); default: "
                        "simulate one")
    p.add_argument("--out", default=dv["out"], help=f"output directory (default {dv['out']})")
    p.add_argument("--neurons", type=int, default=dv["neurons"],
                   help=f"simulated neurons (default {dv['neurons']})")
    p.add_argument("--frames", type=int, default=dv["frames"],
                   help=f"simulated frames (default {dv['frames']})")
    p.add_argument("--seed", type=int, default=dv["seed"], help=f"seed (default {dv['seed']})")
    p.add_argument("--blocks", type=int, default=dv["blocks"], metavar="K",
                   help=f"blocked split over K chunks, each 8:1:1 forward in time (default "
                        f"{dv['blocks']}; K > 1 when the labels come in long runs)")
    p.add_argument("--models", default=",".join(dv["models"]), metavar="M1,M2",
                   help=f"candidate models (default {','.join(dv['models'])})")
    p.add_argument("--method", default=dv["method"],
                   help=f"structured pruning method (default {dv['method']})")
    p.add_argument("--no-tq", action="store_true", help="skip Stage T and Q (default: run them)")
    p.add_argument("--epochs", type=int, default=dv["epochs"],
                   help=f"initial training epochs (default {dv['epochs']})")
    p.add_argument("--retrain-epochs", type=int, default=dv["retrain_epochs"],
                   help=f"fine-tuning epochs per pruning candidate (default {dv['retrain_epochs']}; "
                        "the paper: 50)")
    p.add_argument("--max-iterations", type=int, default=dv["max_iterations"], metavar="N",
                   help=f"stop each candidate's search after N iterations (default "
                        f"{dv['max_iterations']}; 0: no bound, the method's own stopping rule)")
    p.add_argument("--select", default=dv["select"],
                   help=f"selection constraints (default {dv['select']!r})")
    p.add_argument("--minimize", default=dv["minimize"],
                   help=f"selection objective (default {dv['minimize']!r})")
    p.add_argument("--engine", default=dv["engine"], help=f"the service's engine (default {dv['engine']})")
    p.add_argument("--credit", type=int, default=dv["credit"],
                   help=f"replay frames in flight (default {dv['credit']}: lockstep)")
    p.add_argument("--deadline-ms", type=float, default=dv["deadline_ms"],
                   help=f"the service's deadline (default {dv['deadline_ms']:g})")
    p.add_argument("--timing-frames", type=int, default=dv["timing_frames"],
                   help=f"frames timed per model in the C engine (default {dv['timing_frames']})")
    add_session_options(p)


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("demo", help="the whole product end to end: train, prune, C, serve, "
                                    "replay, listen, report.html",
                       description=_DESCRIPTION, epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    p.set_defaults(func=_cmd_demo)


def settings_from_args(args: argparse.Namespace):
    from neurogrs.demo.settings import DemoSettings

    return DemoSettings(out=args.out, neurons=args.neurons, frames=args.frames, seed=args.seed, blocks=args.blocks,
                        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
                        method=args.method, tq=not args.no_tq, epochs=args.epochs,
                        retrain_epochs=args.retrain_epochs,
                        max_iterations=args.max_iterations or None, select=args.select or None,
                        minimize=args.minimize or None, engine=args.engine, credit=args.credit,
                        deadline_ms=args.deadline_ms, timing_frames=args.timing_frames)


def _cmd_demo(args: argparse.Namespace) -> int:
    from neurogrs.demo.run import run_demo

    settings = settings_from_args(args)  # refuse bad options before any work
    session = text = None
    if args.session is not None:
        from neurogrs.cli_session import session_from_args

        session = session_from_args(args, args.session)
        text = (f"session {args.session}: {session.n_neurons} neurons x {session.n_frames:,} "
                f"frames at {session.fs:g} Hz")
    try:
        run_demo(settings, session, text, echo=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m neurogrs.demo [options]`: the same as `neurogrs demo [options]`."""
    from neurogrs.cli import dispatch

    p = argparse.ArgumentParser(prog="python -m neurogrs.demo", description=_DESCRIPTION,
                                epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    p.set_defaults(func=_cmd_demo)
    return dispatch(p.parse_args(argv))
