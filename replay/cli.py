"""CLI: replay. Parses and delegates to neurogrs.replay.player."""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed must be a number or 'max', got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"speed must be > 0, got {text!r}")
    return v


def register(sub: "argparse._SubParsersAction") -> None:
    from neurogrs.cli_session import add_nwb_options
    from neurogrs.stream.transport import CLIENT_FRAMES

    p = sub.add_parser(
        "replay", help="replay a recorded session as frames (paced, lossless, XPUB-synced)",
        description="Publish a session's frames (protocol v1) at fs x speed. Waits for a "
                    "subscriber (as long as it takes, or --wait-timeout); never drops (waits "
                    "at the high-water mark); sends an end-of-stream message; prints a JSON "
                    "report on stdout. SIGTERM/SIGINT stop it within 0.1 s (plus up to 0.5 s "
                    "to flush queued frames), exit code 0, report `interrupted`.")
    p.add_argument("session", help="session file (.npz, .nwb, NeuroGRS CSV)")
    p.add_argument("--frames", default=CLIENT_FRAMES,
                   help="endpoint (> connects, the default; @ binds)")
    p.add_argument("--speed", type=_speed, default=1.0, help="1 (real time), N (N x), or max")
    p.add_argument("--start", type=int, default=0, help="first frame index")
    p.add_argument("--loop", action="store_true", help="start over at the end")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.add_argument("--restamp", action="store_true",
                   help="t_src = actual send time (default: the frame's scheduled time)")
    p.add_argument("--session-name", help="topic session name (default: the file's stem)")
    p.add_argument("--wait-timeout", "--wait", dest="wait_timeout", type=float, default=None,
                   metavar="S", help="give up (exit 2) after S seconds without a subscriber "
                                     "(default: wait as long as it takes)")
    p.add_argument("--curve", metavar="DIR", help="CURVE keys directory (client key)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_credit_options(p)
    add_nwb_options(p)
    p.set_defaults(func=_cmd_replay)


def _add_credit_options(p: argparse.ArgumentParser) -> None:
    from neurogrs.stream.transport import CLIENT_PREDICTIONS

    g = p.add_argument_group("evaluate at full speed (credit-based flow control)")
    g.add_argument("--credit", type=int, default=None, metavar="N",
                   help="at most N frames in flight: send the next frame when a prediction or "
                        "error report for an earlier one arrives (1: lockstep, every frame "
                        "answered even under the service's 'latest' policy); replaces "
                        "--speed pacing; the report gives frames/s reached (default off)")
    g.add_argument("--predictions", default=CLIENT_PREDICTIONS,
                   help="the service's prediction endpoint, read with --credit "
                        f"(default {CLIENT_PREDICTIONS})")
    g.add_argument("--answer-timeout", type=float, default=10.0, metavar="S",
                   help="with --credit: stop (exit 2) when nothing comes back for S seconds "
                        "with frames in flight (default 10)")


def _cmd_replay(args: argparse.Namespace) -> int:
    import signal

    from neurogrs.cli_session import nwb_selection_from_args
    from neurogrs.replay.player import Player, ReplaySettings, default_session_name, load_session_file

    _credit_settings(args)  # refuse bad options before reading the session
    session = load_session_file(args.session, nwb=nwb_selection_from_args(args))
    cfg = ReplaySettings(frames=args.frames,
                       session_name=args.session_name or default_session_name(args.session),
                       speed=args.speed, start=args.start, loop=args.loop, restamp=args.restamp,
                       max_frames=args.max_frames, subscriber_timeout_s=args.wait_timeout,
                       curve_dir=args.curve)
    player = Player(session.traces, session.fs, cfg)
    previous = {sig: signal.signal(sig, lambda *_: player.stop())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        player.open()
        print(json.dumps({"event": "waiting", "topic": f"frame.{cfg.session_name}",
                          "endpoint": player.endpoint, "timeout_s": cfg.subscriber_timeout_s}),
              file=sys.stderr, flush=True)
        if args.credit is not None:
            report = _play_credit(player, args)
        else:
            player.wait_for_subscriber()
            report = player.play(progress=not args.no_progress and sys.stderr.isatty())
    finally:
        player.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(json.dumps({"event": "done", **report.to_dict()}), flush=True)
    return 0


def _credit_settings(args: argparse.Namespace):
    """CreditSettings from --credit/--predictions/--answer-timeout, or None without --credit."""
    if args.credit is None:
        return None
    from neurogrs.errors import ConfigError
    from neurogrs.replay.credit import CreditSettings

    if args.speed != 1.0:
        raise ConfigError("--credit paces frames by the service's answers: --speed does not apply")
    return CreditSettings(credit=args.credit, predictions=args.predictions,
                          answer_timeout_s=args.answer_timeout,
                          hello_timeout_s=args.wait_timeout)


def _play_credit(player, args: argparse.Namespace):
    from neurogrs.replay.credit import play_credit

    return play_credit(player, _credit_settings(args),
                       progress=not args.no_progress and sys.stderr.isatty())
