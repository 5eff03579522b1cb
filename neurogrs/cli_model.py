"""Offline subcommands: train, evaluate, info. Parse, then delegate."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

__all__ = ["register"]


def _session(path: str, args: argparse.Namespace):
    from neurogrs.cli_session import session_from_args

    return session_from_args(args, path)


def _add_session_options(p: argparse.ArgumentParser) -> None:
    from neurogrs.cli_session import add_session_options

    add_session_options(p)


def register(sub: argparse._SubParsersAction) -> None:
    from neurogrs.zoo import FRAMEWISE

    p = sub.add_parser(
        "train",
        help="train a decoder on a session and write an artifact",
        description=(
            "Split the session D_S:D_V:D_E = 8:1:1 (blocked in time by default), balance the "
            "training part by undersampling, train a zoo model or a .keras candidate, and "
            "write an artifact directory (model.json, weights.npz, model.keras; no "
            "model.keras for a temporal model). Prints "
            "accuracy on D_V and D_E beside balanced accuracy and the baseline (the best "
            "constant predictor on each part; the training part's majority class beside it), "
            "parameters and FLOPs."
        ),
    )
    p.add_argument("session", help="session file (.npz, TRACES_*.csv, speed-only .npz)")
    p.add_argument("--model", default="nn1",
                   help=f"zoo model ({', '.join(FRAMEWISE)}; temporal context, causal: "
                        "MODEL_traces, MODEL_filter, MODEL_traces_filter, e.g. nn2_traces, "
                        "docs/temporal.md) or a .keras Sequential (default nn1)")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument("--epochs", type=int, default=150, help="training epochs (default 150)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed for split, sampling, weights (default 0)")
    p.add_argument("--split", choices=("blocked", "shuffled"), default="blocked",
                   help="blocked: contiguous, forward in time (default, honest); "
                        "shuffled: the paper's (leaks neighbouring frames)")
    p.add_argument("--blocks", type=int, default=1,
                   help="blocked split over K contiguous chunks, each split 8:1:1 in time (default 1)")
    p.add_argument("--standardize", action="store_true",
                   help="z-score each neuron with training statistics (stored in the artifact)")
    p.add_argument("--eval-session", nargs="+", metavar="OTHER", default=None,
                   help="after training, also evaluate on other sessions of the same neurons "
                        "(closed-loop case: later days), read with the same session options; "
                        "per session and pooled numbers, best constant predictor beside, are "
                        "saved in the artifact's metrics as cross_session (one session: also "
                        "as eval_session). Only reported: never used for any decision")
    p.add_argument("--eval-csv-id", nargs=3, metavar=("MOUSE", "DAY", "SESSION"), default=None,
                   help="CSV layout: which session of the --eval-session directory (--csv-id "
                        "names the training session only; with one --eval-session)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_session_options(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="evaluate an artifact on one or more sessions (numpy engine)",
        description="Decode every frame of each SESSION with the artifact and report accuracy, "
                    "balanced accuracy and the baseline (the best constant predictor on "
                    "that SESSION: its accuracy and its balanced accuracy, 1 / classes "
                    "present). With several sessions (e.g. other days of the same neurons): "
                    "a row per session and a pooled row (confusion counts summed over the "
                    "sessions). A session holding a single class is still scored: its "
                    "balanced accuracy is the recall of that class (= its accuracy) and the "
                    "best constant scores 1.0.",
    )
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("sessions", nargs="+", metavar="SESSION",
                   help="session file(s) recording the artifact's neurons (several sessions "
                        "of a CSV directory: name their TRACES_*.csv files)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_session_options(p)
    p.epilog = ("Without label options, the sessions are labelled as train labelled its session "
                "(the options are recorded in the artifact); options that differ are used, "
                "with a warning.")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("info", help="describe an artifact (structure, params, FLOPs, metrics)",
                       description="Verify an artifact and print what it holds.")
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("--json", action="store_true", help="print model.json's summary as JSON")
    p.set_defaults(func=_cmd_info)


def _print_metrics(metrics: dict, eval_path: str | None = None) -> None:
    """val, test, eval_session lines and the cross-session table, as train printed them
    (for train and info)."""
    from neurogrs.crosseval import format_cross_table
    from neurogrs.evaluate import format_metrics

    for name in ("val", "test"):
        if name in metrics:
            print(format_metrics(name, metrics[name]))
    if "eval_session" in metrics:
        e = metrics["eval_session"]
        print(f"eval_session: the other session {eval_path or e.get('source', '?')}, "
              f"all {e['n']} frames")
        print(format_metrics("eval_session", e))
    if "cross_session" in metrics:
        print(format_cross_table(metrics["cross_session"], title=(
            "cross-session (--eval-session, every frame; reported only, never used to decide)")))


def _print_summary(spec, metrics: dict, out: Path, seconds: float,
                   eval_path: str | None) -> None:
    s = spec.summary()
    print(f"model      {spec.name}  structure {s['structure']}")
    print(f"params     {s['params']:,}  (non-zero {s['nonzero_params']:,})")
    print(f"FLOPs      {s['flops']:,}  (per frame, TF-profiler convention)")
    _print_metrics(metrics, eval_path)
    print(f"split      {metrics['split']}")
    print(f"trained    {seconds:.1f} s")
    print(f"artifact   {out}")


def _eval_sessions(args: argparse.Namespace) -> list:
    """--eval-session paths -> [(path, Session)], read with the training options (a CSV
    directory's session picked by --eval-csv-id); a single label class is allowed."""
    from neurogrs.cli_session import scored_sessions_from_args
    from neurogrs.errors import ConfigError, FormatError

    paths = args.eval_session or []
    if not paths:
        if args.eval_csv_id is not None:
            raise ConfigError("--eval-csv-id names a session of --eval-session DIR: give both")
        return []
    if args.eval_csv_id is not None:
        if len(paths) != 1:
            raise ConfigError(f"--eval-csv-id picks the session of one --eval-session DIR, got "
                              f"{len(paths)} sessions (name TRACES_*.csv files instead)")
        path = Path(paths[0])
        if not (path.is_dir() or path.suffix.lower() == ".csv"):
            raise ConfigError(f"--eval-csv-id applies to a NeuroGRS CSV directory, not {path.name}")
    try:
        return scored_sessions_from_args(paths, argparse.Namespace(**{**vars(args),
                                                                  "csv_id": args.eval_csv_id}))
    except FormatError as exc:  # the flag that picks a session here is --eval-csv-id
        raise FormatError(str(exc).replace("--csv-id", "--eval-csv-id")) from exc


def _cross_session(spec, session, split, others: list) -> dict:
    """cross_session metrics of the trained spec (train majority beside each row)."""
    import warnings

    import numpy as np

    from neurogrs.crosseval import cross_evaluate

    majority = int(np.bincount(session.labels[split.train]).argmax())
    result = cross_evaluate(spec, others, majority)
    digest = session.digest()
    for row in result["sessions"]:
        row["same_as_training"] = row["session_sha256"] == digest
        if row["same_as_training"] and len(others) > 1:
            warnings.warn(f"--eval-session {row['session']} is the training session itself "
                          "(same content): its numbers are NOT a cross-session result",
                          stacklevel=2)
    return result


def _cmd_train(args: argparse.Namespace) -> int:
    from neurogrs.artifact import save_artifact
    from neurogrs.cli_session import label_options_from_args
    from neurogrs.splits import SplitSettings
    from neurogrs.pruning.train import TrainSettings, train

    config = TrainSettings(
        model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, seed=args.seed,
        split=SplitSettings(mode=args.split, blocks=args.blocks),
        standardize=args.standardize,
    )
    session = _session(args.session, args)
    others = _eval_sessions(args)
    for name, other in others:  # before any training
        if other.n_neurons != session.n_neurons:
            from neurogrs.errors import ConfigError

            raise ConfigError(f"--eval-session {name} has {other.n_neurons} neurons, the "
                              f"training session {session.n_neurons}: it must record the "
                              "same neurons")
    result = train(session, config, progress=not args.quiet and sys.stderr.isatty(),
                   eval_session=others[0][1] if len(others) == 1 else None)
    metrics = dict(result.metrics)
    if others:  # after training: reported, never used for any decision
        metrics["cross_session"] = _cross_session(result.spec, session, result.split, others)
    # how the session was labelled, so that evaluate and listen can score the same labels
    spec = dataclasses.replace(result.spec, metrics=metrics, provenance={
        **result.spec.provenance, "session_options": label_options_from_args(args)})
    keras = result.keras_model  # None for a temporal (stateful) model: no Keras twin
    out = save_artifact(spec, args.out, keras_save=keras.save if keras is not None else None)
    if args.json:
        print(json.dumps({"artifact": str(out), **metrics}, indent=2))
    else:
        _print_summary(result.spec, metrics, out, result.seconds,
                       others[0][0] if len(others) == 1 else None)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from neurogrs.artifact import load_artifact
    from neurogrs.cli_session import apply_recorded_label_options, scored_sessions_from_args
    from neurogrs.crosseval import cross_evaluate, format_cross_table
    from neurogrs.evaluate import format_metrics, metrics_from_confusion

    art = load_artifact(args.artifact)
    note = apply_recorded_label_options(args, art.doc.get("provenance"), str(art.path))
    if note:
        print(f"neurogrs: {note}", file=sys.stderr)
    sessions = scored_sessions_from_args(args.sessions, args)
    # no training part here: the baseline is the best constant predictor on each session
    result = cross_evaluate(art.spec, sessions)
    if len(sessions) > 1:
        print(json.dumps(result, indent=2) if args.json else format_cross_table(result))
        return 0
    row = result["sessions"][0]
    # as before (metrics_from_confusion's keys), with the best constant's columns added
    m = {**metrics_from_confusion(row["confusion"]),
         **{k: v for k, v in row.items() if k != "session"}}
    if args.json:
        print(json.dumps(m, indent=2))
    else:
        print(format_metrics("all", m))
        note = "  (a single class: balanced accuracy = its recall)" if m["single_class"] else ""
        print(f"      best constant: acc {m['best_constant_accuracy']:.3f}, balanced "
              f"{m['best_constant_balanced_accuracy']:.3f}; margin (balanced) "
              f"{m['margin']:+.3f}{note}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from neurogrs.artifact import load_artifact

    art = load_artifact(args.artifact)
    doc = art.doc
    if args.json:
        print(json.dumps({k: doc[k] for k in ("name", "hash", "input", "output", "summary",
                                               "metrics")}, indent=2))
        return 0
    s = art.spec.summary()
    print(f"artifact   {art.path}  (verified)")
    print(f"hash       {art.hash}")
    print(f"inputs     {art.spec.n_inputs} neurons -> {list(art.spec.label_names)}")
    for i, ld in enumerate(doc["layers"]):
        extra = ld.get("activation", "")
        print(f"  {i:2d} {ld['type']:<10} {str(ld['input_shape']):>14} -> {str(ld['output_shape']):<14} {extra}")
    print(f"params     {s['params']:,} (non-zero {s['nonzero_params']:,}); FLOPs {s['flops']:,}")
    _print_metrics(doc.get("metrics") or {})
    return 0

