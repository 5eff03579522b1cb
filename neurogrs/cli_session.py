"""`neurogrs simulate`, `inspect` and `convert`, and the shared session options.

Other commands (train, replay, ...) accept sessions the same way:

    from neurogrs.cli_session import add_session_options, session_from_args
    p.add_argument("session")
    add_session_options(p)
    ...
    session = session_from_args(args)            # reads args.session
    other = session_from_args(args, args.other)  # same options, another file

Heavy imports stay inside the handlers.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register", "add_session_options", "add_nwb_options", "nwb_selection_from_args",
           "session_from_args", "scored_sessions_from_args", "label_rule_from_args",
           "label_options_from_args", "apply_recorded_label_options", "session_summary"]

LABEL_OPTIONS = ("label_from_speed", "speed_units", "smooth_s", "label_column", "nwb_behaviour")
"""The session options that decide the labels (recorded in the artifact by `train`)."""

_SESSION_HELP = """\
session files:
  .npz    native: traces [T,N], labels [T], fs, optional speed [T], positions [N,2],
          meta (JSON). Object arrays (pickles) are refused.
  .csv    NeuroGRS layout: TRACES_<mouse>_<day>_<session>.csv (N rows x T columns),
          with BEHAVIOR_<mouse>_<day>_<session>.csv (T rows x 5 binary columns) and
          CELLXY_<mouse>.csv (N rows x,y) beside it; or a directory of such files.
  .nwb    NWB (needs neurogrs[nwb]): traces from a RoiResponseSeries of the 'ophys'
          module, centroids from its ROI masks, labels from a speed or position series
          or an intervals table, aligned to the frame times. `inspect FILE.nwb` lists
          every usable series; pick with --nwb-traces, --nwb-behaviour, --nwb-plane.

labels from speed (an .npz with speed but no labels, or --label-from-speed):
  default: fine motion, 0.2 < speed < 2 cm/s; the nelpy linear-track session
  (speed in px/s): moving = speed > 10 px/s.
"""


def add_session_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options that pick and label a session; pair with `session_from_args(args)`."""
    g = parser.add_argument_group(
        "session options",
        "how the session file is read and labelled (see `neurogrs inspect --help`)",
    )
    g.add_argument(
        "--label-from-speed", nargs="+", type=float, metavar=("LOW", "HIGH"), default=None,
        help="derive labels from speed: LOW HIGH -> 1 where LOW < speed < HIGH (band, e.g. "
             "fine motion 0.2 2); LOW alone -> 1 where speed > LOW (moving vs still). "
             "Overrides labels stored in the file",
    )
    g.add_argument(
        "--speed-units", default=None, metavar="UNITS",
        help="units of the --label-from-speed thresholds: cm/s (default), mm/s, m/s, px/s; "
             "converted to the file's speed units when both are lengths per second",
    )
    g.add_argument(
        "--smooth-s", type=float, default=None, metavar="SEC",
        help="Gaussian-smooth speed (sigma in seconds) before thresholding (default 0: none)",
    )
    g.add_argument(
        "--label-column", type=int, default=None, metavar="K",
        help="CSV layout: 0-based BEHAVIOR column holding the label (default 2, fine motion)",
    )
    g.add_argument(
        "--csv-id", nargs=3, metavar=("MOUSE", "DAY", "SESSION"), default=None,
        help="CSV layout: which session to read when SESSION is a directory",
    )
    add_nwb_options(parser)
    return parser


def add_nwb_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--nwb-traces, --nwb-behaviour, --nwb-plane; pair with `nwb_selection_from_args(args)`."""
    g = parser.add_argument_group(
        "NWB files", "which series of an .nwb file make the session (default: the single "
                     "candidate; several -> an error listing them; `neurogrs inspect FILE.nwb`)")
    g.add_argument("--nwb-traces", default=None, metavar="NAME",
                   help="the RoiResponseSeries: its name, path "
                        "(ophys/Fluorescence/RoiResponseSeries) or path components "
                        "(Deconvolved, Deconvolved/plane0)")
    g.add_argument("--nwb-behaviour", default=None, metavar="NAME",
                   help="the labels' source: a speed or label TimeSeries, a SpatialSeries "
                        "(position -> speed) or an intervals table, named the same ways")
    g.add_argument("--nwb-plane", default=None, metavar="NAME",
                   help="the PlaneSegmentation whose ROIs are the neurons when there are "
                        "several, or suite2p's per-plane series name (plane0, plane1, ...)")
    return parser


def nwb_selection_from_args(args: argparse.Namespace):
    """The NwbSelectionSettings asked for on the command line, or None."""
    from neurogrs.nwb import NwbSelectionSettings

    chosen = {k: getattr(args, f"nwb_{k}", None) for k in ("traces", "behaviour", "plane")}
    return None if all(v is None for v in chosen.values()) else NwbSelectionSettings(**chosen)


def label_rule_from_args(args: argparse.Namespace):
    """The SpeedLabelRule asked for on the command line, or None."""
    from neurogrs.errors import ConfigError
    from neurogrs.formats import SpeedLabelRule

    values = getattr(args, "label_from_speed", None)
    units = getattr(args, "speed_units", None)
    smooth = float(getattr(args, "smooth_s", 0.0) or 0.0)
    if values is None:
        if units is not None or smooth:
            raise ConfigError("--speed-units and --smooth-s need --label-from-speed LOW [HIGH]")
        return None
    if len(values) > 2:
        raise ConfigError(f"--label-from-speed takes LOW [HIGH], got {len(values)} values")
    high = values[1] if len(values) == 2 else None
    return SpeedLabelRule(low=values[0], high=high, units=units or "cm/s", smooth_s=smooth)


def session_from_args(args: argparse.Namespace, path: str | None = None):
    """Load `path` (default `args.session`) with the session options in `args`."""
    from neurogrs.formats import load_session

    csv_id = getattr(args, "csv_id", None) or (None, None, None)
    column = getattr(args, "label_column", None)
    return load_session(
        path if path is not None else args.session,
        label_rule=label_rule_from_args(args),
        label_column=2 if column is None else column,
        mouse=csv_id[0], day=csv_id[1], session=csv_id[2],
        nwb=nwb_selection_from_args(args),
    )


def scored_sessions_from_args(paths: list[str], args: argparse.Namespace) -> list:
    """[(path, Session)] of sessions that are only scored (`evaluate`, `--eval-session`),
    read with the session options in `args`: every file is checked before any is read, and
    a single label class is allowed (`neurogrs.session.scoring_only`)."""
    from pathlib import Path

    from neurogrs.errors import FormatError
    from neurogrs.session import scoring_only

    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise FormatError(f"session file not found: {', '.join(missing)}")
    with scoring_only():
        return [(p, session_from_args(args, p)) for p in paths]


def label_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The label-deciding session options, resolved (defaults filled in), JSON-ready.

    `train` records this in the artifact's provenance (`session_options`); `evaluate` and
    `listen` compare it with their own (`apply_recorded_label_options`). `--csv-id` is not
    among them: it names a recording, not how it is labelled.
    """
    label_rule_from_args(args)  # validates the combination
    values = getattr(args, "label_from_speed", None)
    column = getattr(args, "label_column", None)
    return {
        "label_from_speed": None if values is None else [float(v) for v in values],
        "speed_units": (getattr(args, "speed_units", None) or "cm/s") if values else None,
        "smooth_s": float(getattr(args, "smooth_s", None) or 0.0),
        "label_column": 2 if column is None else int(column),
        "nwb_behaviour": getattr(args, "nwb_behaviour", None),
    }


def _as_flags(options: dict[str, Any]) -> str:
    flags = []
    if options.get("label_from_speed"):
        flags.append("--label-from-speed " + " ".join(f"{v:g}" for v in options["label_from_speed"]))
        flags.append(f"--speed-units {options['speed_units']}")
        if options.get("smooth_s"):
            flags.append(f"--smooth-s {options['smooth_s']:g}")
    if options.get("label_column", 2) != 2:
        flags.append(f"--label-column {options['label_column']}")
    if options.get("nwb_behaviour"):
        flags.append(f"--nwb-behaviour {options['nwb_behaviour']}")
    return " ".join(flags) or "(none: the file's own labels, BEHAVIOR column 2)"


def apply_recorded_label_options(args: argparse.Namespace, provenance: dict,
                                 source: str) -> str | None:
    """Score against the labels `train` used: the session options recorded in `provenance`.

    No label option given on this command line: the recorded ones are applied to `args`;
    returns a one-line note saying so when they are not the defaults (else None). Options
    given that differ from the recorded ones are kept (the user asked for them), with a
    warning. An artifact without a record (written before it was kept): nothing changes.
    """
    import warnings

    recorded = (provenance or {}).get("session_options")
    if not isinstance(recorded, dict):
        return None
    given = any(getattr(args, k, None) is not None for k in LABEL_OPTIONS)
    if not given:
        for k in LABEL_OPTIONS:
            setattr(args, k, recorded.get(k))
        if not str(getattr(args, "session", None) or "").lower().endswith(".nwb"):
            args.nwb_behaviour = None  # an NWB series name means nothing to other formats
        defaults = label_options_from_args(argparse.Namespace())
        if {k: recorded.get(k) for k in defaults} == defaults:  # records before nwb_behaviour
            return None
        return f"labels as train made them (recorded in {source}): {_as_flags(recorded)}"
    mine = label_options_from_args(args)
    if mine != {k: recorded.get(k) for k in mine}:
        warnings.warn(
            f"the session options given ({_as_flags(mine)}) differ from those train used "
            f"({_as_flags(recorded)}, recorded in {source}): scoring against other labels "
            "than the model was trained on", stacklevel=2)
    return None


def session_summary(session) -> dict[str, Any]:
    """Numbers `inspect` prints (JSON-friendly)."""
    import numpy as np

    labels = session.labels
    counts = {name: int(np.sum(labels == i)) for i, name in enumerate(session.label_names)}
    runs = np.diff(np.flatnonzero(np.r_[True, np.diff(labels) != 0, True]))
    return {
        "frames": session.n_frames,
        "neurons": session.n_neurons,
        "fs_hz": session.fs,
        "duration_s": round(session.n_frames / session.fs, 3),
        "class_counts": counts,
        "label1_fraction": round(float(np.mean(labels == 1)), 4),
        "mean_label_run_s": round(float(runs.mean()) / session.fs, 2),
        "zero_fraction": round(float(np.mean(session.traces == 0)), 4),
        "positions": session.positions is not None,
        "speed": session.speed is not None,
        "label_rule": session.meta.get("label_rule"),
        "source": session.meta.get("source"),
        "digest": session.digest()[:16],
    }


# --------------------------------------------------------------------------- handlers
def _cmd_simulate(args: argparse.Namespace) -> int:
    from neurogrs.errors import ConfigError

    if args.suite is not None:
        if args.out is not None:
            raise ConfigError("give either OUT.npz or --suite DIR, not both")
        from neurogrs.simulate import simulate_suite

        paths = simulate_suite(args.suite, n_frames=args.frames or 3000)
        for p in paths:
            print(p)
        print(f"wrote {len(paths)} sessions to {args.suite}")
        return 0
    if args.out is None:
        raise ConfigError("give OUT.npz (one session) or --suite DIR (the nine-session suite)")
    from neurogrs.formats import save_session
    from neurogrs.simulate import simulate_session

    sess = simulate_session(
        n_neurons=args.neurons, n_frames=args.frames or 3000, seed=args.seed,
        label1_fraction=args.label1_fraction, fs=args.fs,
    )
    path = save_session(sess, args.out)
    print(f"wrote {path}: {sess!r}")
    return 0


def _nwb_listing(args: argparse.Namespace) -> dict[str, Any] | None:
    from pathlib import Path

    if Path(args.session).suffix.lower() != ".nwb":
        return None
    from neurogrs.nwb import NwbSelectionSettings, nwb_catalog

    catalog = nwb_catalog(args.session, nwb_selection_from_args(args) or NwbSelectionSettings(),
                          want_speed=label_rule_from_args(args) is not None)
    if not args.json:
        print(f"NWB file  {args.session}")
        for key in ("traces", "behaviour"):
            chosen = catalog["chosen"].get(key)
            print(f"{key} series ({len(catalog[key])}):")
            for c in catalog[key]:
                shape = "x".join(str(s) for s in c["shape"])
                mark = "*" if c["path"] == chosen else " "
                plane = f", plane {c['plane']}" if "plane" in c else ""
                print(f"  {mark} {c['path']}  [{c['kind']}] {shape}, {c['timing']}, "
                      f"unit {c['unit']}{plane}")
            if chosen is None:
                print(f"    no default: {catalog['chosen'].get(key + '_problem')}")
        print(f"planes    {', '.join(catalog['planes']) or '(none)'}")
        print("(* = used by default, or as chosen by --nwb-traces/--nwb-behaviour/--nwb-plane)\n")
    return catalog


def _cmd_inspect(args: argparse.Namespace) -> int:
    catalog = _nwb_listing(args)
    sess = session_from_args(args)
    info = session_summary(sess)
    if args.json:
        if catalog is not None:
            info["nwb"] = catalog
        print(json.dumps(info, indent=2))
        return 0
    print(f"session   {args.session}")
    print(f"source    {info['source']}")
    print(f"frames    {info['frames']} ({info['duration_s']:g} s at {info['fs_hz']:g} Hz)")
    print(f"neurons   {info['neurons']}")
    counts = ", ".join(f"{k}: {v}" for k, v in info["class_counts"].items())
    print(f"labels    {counts}  (label-1 fraction {info['label1_fraction']:.1%}, "
          f"mean run {info['mean_label_run_s']:g} s)")
    if info["label_rule"]:
        print(f"rule      {info['label_rule']}")
    print(f"zeros     {info['zero_fraction']:.1%} of trace entries are exactly 0")
    print(f"positions {'yes' if info['positions'] else 'no'}")
    print(f"speed     {'yes' if info['speed'] else 'no'}")
    print(f"digest    {info['digest']}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a simulated calcium-imaging session (or the nine-session suite)",
        description=(
            "Deterministic simulator of calcium-imaging sessions: clustered neuron\n"
            "centroids, rest / fine / coarse motion at 10 Hz, locomotion-tuned neurons,\n"
            "spikes -> GCaMP-like transients -> noise -> thresholded traces (about half\n"
            "of all entries exactly zero). Label 1 = fine motion (0.2 < speed < 2 cm/s).\n"
            "Same arguments, same bytes. The model and its measured decodability:\n"
            "docs/data.md."
        ),
        epilog="examples:\n  neurogrs simulate session.npz --neurons 273 --seed 0\n"
               "  neurogrs simulate --suite sim/   # M1/M2/M3 (273/140/114 neurons) x S1-S3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", nargs="?", metavar="OUT.npz", help="output session file (.npz)")
    p.add_argument("--suite", metavar="DIR", default=None,
                   help="write the nine-session suite (3 mice x 3 sessions, fixed seeds) to DIR")
    p.add_argument("--neurons", type=int, default=273, metavar="N", help="neurons (default 273)")
    p.add_argument("--frames", type=int, default=None, metavar="T",
                   help="frames per session (default 3000 = 5 min at 10 Hz)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--label1-fraction", type=float, default=0.30, metavar="F",
                   help="target fraction of fine-motion frames, 0.05-0.8 (default 0.30; "
                        "the paper's sessions have 0.13-0.45)")
    p.add_argument("--fs", type=float, default=10.0, metavar="HZ", help="frame rate (default 10)")
    p.set_defaults(func=_cmd_simulate)

    q = sub.add_parser(
        "inspect",
        help="summarise a session file (frames, neurons, class balance, zeros, positions)",
        description="Load a session as training would and print a summary.",
        epilog=_SESSION_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("session", metavar="SESSION",
                   help="session file (.npz, .nwb, TRACES_*.csv) or CSV directory")
    add_session_options(q)
    q.add_argument("--json", action="store_true", help="print the summary as JSON")
    q.set_defaults(func=_cmd_inspect)

    c = sub.add_parser(
        "convert",
        help="convert a session to NWB or .npz (from .npz, .nwb or the NeuroGRS CSV layout)",
        description="Read a session as training would (same session options) and write it as\n"
                    "NWB (OUT.nwb; needs neurogrs[nwb]) or as a native .npz (OUT.npz).\n"
                    "The NWB layout is suite2p's: ophys/Fluorescence/RoiResponseSeries,\n"
                    "ophys/ImageSegmentation/PlaneSegmentation (centroids as pixel masks),\n"
                    "behavior/BehavioralTimeSeries/labels (and speed). docs/data.md, NWB.",
        epilog=_SESSION_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("session", metavar="SESSION",
                   help="session to read (.npz, .nwb, TRACES_*.csv or CSV directory)")
    c.add_argument("out", metavar="OUT", help="file to write: OUT.nwb or OUT.npz")
    c.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    add_session_options(c)
    c.set_defaults(func=_cmd_convert)


def _cmd_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from neurogrs.errors import ConfigError

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".nwb", ".npz"):
        raise ConfigError(f"OUT = {args.out}: write .nwb (NWB) or .npz (native); "
                          f"got {suffix or 'no suffix'}")
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists: remove it or give --force")
    if out.resolve() == Path(args.session).resolve():
        raise ConfigError(f"OUT = {args.out} is the session being read")
    sess = session_from_args(args)
    if suffix == ".nwb":
        from neurogrs.nwb import save_nwb_session

        path = save_nwb_session(sess, out, overwrite=True)
    else:
        from neurogrs.formats import save_session

        path = save_session(sess, out)
    print(f"wrote {path}: {sess!r}")
    return 0
