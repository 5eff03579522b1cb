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
    p.add_argument("--eval-session", metavar="OTHER",
                   help="also evaluate on another session of the same neurons (closed-loop "
                        "case), read with the same session options; saved in the artifact's "
                        "metrics as eval_session")
    p.add_argument("--eval-csv-id", nargs=3, metavar=("MOUSE", "DAY", "SESSION"), default=None,
                   help="CSV layout: which session of the --eval-session directory (--csv-id "
                        "names the training session only)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_session_options(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="evaluate an artifact on a session (numpy engine)",
        description="Decode every frame of SESSION with the artifact and report accuracy, "
                    "balanced accuracy and the baseline (the best constant predictor on "
                    "SESSION).",
    )
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("session", help="session file")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_session_options(p)
    p.epilog = ("Without label options, the session is labelled as train labelled its session "
                "(the options are recorded in the artifact); options that differ are used, "
                "with a warning.")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("info", help="describe an artifact (structure, params, FLOPs, metrics)",
                       description="Verify an artifact and print what it holds.")
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("--json", action="store_true", help="print model.json's summary as JSON")
    p.set_defaults(func=_cmd_info)


def _print_metrics(metrics: dict, eval_path: str | None = None) -> None:
    """val, test and eval_session lines, as train printed them (for train and info)."""
    from neurogrs.evaluate import format_metrics

    for name in ("val", "test"):
        if name in metrics:
            print(format_metrics(name, metrics[name]))
    if "eval_session" in metrics:
        e = metrics["eval_session"]
        print(f"eval_session: the other session {eval_path or e.get('source', '?')}, "
              f"all {e['n']} frames")
        print(format_metrics("eval_session", e))


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


def _eval_session(args: argparse.Namespace):
    """--eval-session, read with the training options but its own --eval-csv-id."""
    from neurogrs.errors import ConfigError, FormatError

    if args.eval_session is None:
        if args.eval_csv_id is not None:
            raise ConfigError("--eval-csv-id names a session of --eval-session DIR: give both")
        return None
    path = Path(args.eval_session)
    if args.eval_csv_id is not None and not (path.is_dir() or path.suffix.lower() == ".csv"):
        raise ConfigError(f"--eval-csv-id applies to a NeuroGRS CSV directory, not {path.name}")
    try:
        return _session(args.eval_session, argparse.Namespace(**{**vars(args),
                                                                   "csv_id": args.eval_csv_id}))
    except FormatError as exc:  # the flag that picks a session here is --eval-csv-id
        raise FormatError(str(exc).replace("--csv-id", "--eval-csv-id")) from exc


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
    other = _eval_session(args)
    result = train(session, config, progress=not args.quiet and sys.stderr.isatty(),
                   eval_session=other)
    # how the session was labelled, so that evaluate and listen can score the same labels
    spec = dataclasses.replace(result.spec, provenance={
        **result.spec.provenance, "session_options": label_options_from_args(args)})
    keras = result.keras_model  # None for a temporal (stateful) model: no Keras twin
    out = save_artifact(spec, args.out, keras_save=keras.save if keras is not None else None)
    if args.json:
        print(json.dumps({"artifact": str(out), **result.metrics}, indent=2))
    else:
        _print_summary(result.spec, result.metrics, out, result.seconds, args.eval_session)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from neurogrs.artifact import load_artifact
    from neurogrs.cli_session import apply_recorded_label_options
    from neurogrs.evaluate import evaluate_spec, format_metrics

    art = load_artifact(args.artifact)
    note = apply_recorded_label_options(args, art.doc.get("provenance"), str(art.path))
    if note:
        print(f"neurogrs: {note}", file=sys.stderr)
    session = _session(args.session, args)
    if session.n_neurons != art.spec.n_inputs:
        from neurogrs.errors import SessionError

        raise SessionError(f"the artifact decodes {art.spec.n_inputs} neurons, "
                           f"the session has {session.n_neurons}")
    # no training part here: the baseline is the best constant predictor on this session
    m = evaluate_spec(art.spec, session, None, None)
    if args.json:
        print(json.dumps(m, indent=2))
    else:
        print(format_metrics("all", m))
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

