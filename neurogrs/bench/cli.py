"""CLI: `neurogrs bench inference|service|pruning|crosssession`: the benchmark room's commands (thin: parse, delegate)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from neurogrs.bench.service import ServiceBenchSettings

__all__ = ["register_bench", "service_bench_settings"]


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    _register_inference(bench_sub)
    _register_service(bench_sub)
    _register_pruning(bench_sub)
    _register_crosssession(bench_sub)


def _register_inference(bench_sub: argparse._SubParsersAction) -> None:
    from neurogrs.codegen.generator import SPARSE_MODES

    p = bench_sub.add_parser(
        "inference",
        help="per-frame latency of the numpy, numba and C engines vs Keras, LiteRT, ONNX Runtime",
        description=(
            "Time one frame per call, one thread, on the same model and frames: the neurogrs "
            "engines, the C code timed inside C, and the peers (Keras model(x), LiteRT, ONNX "
            "Runtime; from the `bench` extra, skipped when absent). Prints median and p99 "
            "latency, ratios vs LiteRT, FLOPs."
        ),
    )
    p.add_argument("artifact", help="artifact directory (model.json + weights.npz)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--frames", type=int, default=10_000,
                   help="frames per path (default 10000; Keras gets --keras-frames)")
    p.add_argument("--keras-frames", type=int, default=200,
                   help="frames for Keras model(x), milliseconds each (default 200)")
    p.add_argument("--no-peers", action="store_true", help="engines only (no TensorFlow)")
    p.add_argument("--march-native", action="store_true",
                   help="build the C engine with -march=native")
    p.add_argument("--sparse", choices=SPARSE_MODES, default="auto",
                   help="C code for sparse layers (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random frames")
    p.add_argument("--gap-ms", type=float, default=0.0, metavar="MS",
                   help="idle time before each call, like frames of a live session (caches "
                        "go cold); use fewer --frames, e.g. --gap-ms 20 --frames 150")
    p.set_defaults(func=_bench_inference)


def _register_service(bench_sub: argparse._SubParsersAction) -> None:
    from neurogrs.inference import ENGINES

    p = bench_sub.add_parser(
        "service", help="replay -> service -> listener on loopback, with a bare echo floor",
        description="End-to-end latency, loss and deadline misses at 10 Hz, at an aggregate "
                    "rate, at the maximum rate; a bare pyzmq+msgpack echo as the floor; a soak.")
    p.add_argument("artifact")
    p.add_argument("--engine", default="c", choices=ENGINES)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per paced run")
    p.add_argument("--rate", type=float, default=1000.0, help="aggregate frames/s run")
    p.add_argument("--max-frames", type=int, default=50_000, help="frames in the max-rate run")
    p.add_argument("--soak-frames", type=int, default=1_000_000, help="soak length (0: skip)")
    p.add_argument("--soak-rate", type=float, default=None,
                   help="soak rate in frames/s (default: 80%% of the maximum sustained rate)")
    p.add_argument("--search-start", type=int, default=2000, metavar="FPS",
                   help="first rate of the max-sustained search (doubles until a rate fails, "
                        "then bisects)")
    p.add_argument("--search-max", type=int, default=160_000, metavar="FPS",
                   help="upper bound of the search (the table says when it was reached)")
    p.add_argument("--churn-sessions", type=int, default=0, metavar="N",
                   help="during the soak, N short sessions that vanish without end-of-stream "
                        "(3600: one a second for an hour)")
    p.add_argument("--churn-frames", type=int, default=10, metavar="K",
                   help="frames each churn session sends")
    p.add_argument("--churn-restart-every", type=int, default=0, metavar="N",
                   help="every N-th churn session is a source that crashes and restarts: K "
                        "more frames from seq 0 under a new run id (0: none)")
    p.add_argument("--session-idle-s", type=float, default=None, metavar="S",
                   help="passed to the service (serve --session-idle-s): sessions idle this "
                        "long expire; with churn compressed in time, scale it the same way "
                        "(default: the service's, 60 s)")
    p.add_argument("--deadline-ms", type=float, default=100.0)
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=_bench_service)


def _register_pruning(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "pruning", help="retraining pruning candidates: naive Keras vs the masked trainer",
        description=(
            "Simulate a session, train nn1, then retrain R rounds of GRS candidates (one random "
            "unit off per prunable layer): a new Keras model + compile + fit per candidate "
            "(Keras' defaults, and one graph call per epoch), and fit_many (full-width "
            "masked model, all candidates in one XLA call). Prints seconds per candidate, "
            "the ratios and validation accuracies."
        ),
    )
    p.add_argument("--neurons", type=int, default=273, help="simulated neurons (default 273)")
    p.add_argument("--frames", type=int, default=3000, help="simulated frames (default 3000)")
    p.add_argument("--rounds", type=int, default=3, help="GRS-like rounds R (default 3)")
    p.add_argument("--epochs", type=int, default=50, help="retraining epochs (default 50)")
    p.add_argument("--naive-epochs", type=int, default=10,
                   help="epochs the Keras references run; their time is build + first epoch "
                        "+ later epochs' mean x (--epochs - 1) (default 10; set it to --epochs "
                        "to run them in full)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_bench_pruning)
    _add_pruning_run_arguments(p)


def _add_pruning_run_arguments(p: argparse.ArgumentParser) -> None:
    from neurogrs.bench.suite import QUICK_PRUNE, QUICK_SESSIONS
    from neurogrs.pruning.methods import method_names

    g = p.add_argument_group("the full GRS run (printed after the ratio)")
    g.add_argument("--no-grs-run", action="store_true",
                   help="skip the timed full GRS run of nn1 (--neurons, --frames, --epochs)")
    s = p.add_argument_group(
        "--suite: methods over the simulated nine-session suite",
        "One job per (model, split, session, trial, method): `neurogrs prune` with Stage T/Q. "
        "Results are appended to OUT/jobs.jsonl as they finish; tables (mean/min/max test "
        "loss, params and FLOPs % of initial, +TQ non-zero %, wall time, retrainings) go to "
        "OUT/tables.{json,md,png} and the terminal. Shuffled split: accuracy (the papers'); "
        "blocked split: balanced accuracy.")
    s.add_argument("--suite", action="store_true", help="run the suite instead of the ratio")
    s.add_argument("--out", default="prune-suite", metavar="DIR",
                   help="suite output directory (default prune-suite)")
    s.add_argument("--models", default="nn1,nn2,cnn1,cnn2",
                   help="zoo models (default all four)")
    s.add_argument("--methods", default="grs,jgrs,rrs,nwm",
                   help=f"methods among {','.join(method_names())} (default grs,jgrs,rrs,nwm)")
    s.add_argument("--splits", default="shuffled",
                   help="shuffled (accuracy, the papers'; the default) and/or blocked "
                        "(balanced accuracy)")
    s.add_argument("--sessions", default=",".join(QUICK_SESSIONS), metavar="M1_S1,...|all",
                   help=f"suite sessions to run, or all (M1..M3 x S1..S3); default "
                        f"{','.join(QUICK_SESSIONS)} (one per mouse)")
    s.add_argument("--trials", type=int, default=1, help="trials per session (seed + k)")
    s.add_argument("--suite-frames", type=int, default=3000,
                   help="frames per simulated session (default 3000)")
    s.add_argument("--difficulty", choices=("standard", "hard"), default="standard",
                   help="simulated sessions: standard, or hard (lower decodability: fewer "
                        "and weaker tuned neurons, so the methods separate)")
    s.add_argument("--config", metavar="FILE.toml", default=None,
                   help="pruning settings (PruneSettings keys, as `neurogrs prune --config`)")
    s.add_argument("--retrain-epochs", type=int, default=None,
                   help=f"fine-tuning epochs per candidate (default "
                        f"{QUICK_PRUNE['retrain_epochs']}; the paper's: 50)")
    s.add_argument("--initial-epochs", type=int, default=None,
                   help=f"initial training epochs (default {QUICK_PRUNE['initial_epochs']}; "
                        f"the paper's: 150)")
    s.add_argument("--no-tq", action="store_true", help="skip Stage T/Q after each method")
    s.add_argument("--stage-t", choices=("layerwise", "global", "per_layer"), default=None,
                   help="the Stage T reading of the jobs' Stage T/Q (default layerwise; "
                        "`neurogrs prune --stage-t`)")
    s.add_argument("--tq-readings", default=None, metavar="layerwise,global,per_layer",
                   help="also run these Stage T readings on each job's structured model and "
                        "tabulate them side by side (no retraining)")
    s.add_argument("--resume", action="store_true",
                   help="continue the suite in --out: finished jobs are skipped")
    s.add_argument("--tables-only", action="store_true",
                   help="only rebuild the tables from --out/jobs.jsonl (runs nothing)")


def _bench_pruning(args: argparse.Namespace) -> int:
    if args.suite or args.tables_only:
        return _bench_pruning_suite(args)
    from neurogrs.bench.grs_timing import format_grs_timing, run_grs_timing
    from neurogrs.bench.pruning import format_table, run_retrain_bench
    from neurogrs.pruning.settings import PruneSettings

    def log(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr)

    result = run_retrain_bench(args.neurons, args.frames, rounds=args.rounds, epochs=args.epochs,
                               naive_epochs=args.naive_epochs, seed=args.seed, log=log)
    if not args.no_grs_run:
        result["grs_run"] = run_grs_timing(
            args.neurons, args.frames, log=log,
            settings=PruneSettings(retrain_epochs=args.epochs, seed=args.seed))
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    if "grs_run" in result and not args.json:
        print(format_grs_timing(result["grs_run"]))
    return 0


def _bench_pruning_suite(args: argparse.Namespace) -> int:
    from neurogrs.bench.suite import QUICK_PRUNE, SuiteSettings, read_records, run_suite
    from neurogrs.bench.suite_tables import terminal, write_tables
    from neurogrs.pruning.settings import PruneSettings

    def names(text: str | None) -> tuple[str, ...]:
        return tuple(n.strip() for n in text.split(",") if n.strip()) if text else ()

    from dataclasses import replace

    from neurogrs.settings import read_toml

    given = read_toml(args.config, f"--config {args.config}") if args.config else {}
    prune = replace(PruneSettings.from_dict({**QUICK_PRUNE, **given}), seed=args.seed,
                    **{k: v for k, v in (("retrain_epochs", args.retrain_epochs),
                                         ("initial_epochs", args.initial_epochs),
                                         ("stage_t", args.stage_t))
                       if v is not None})
    sessions = () if args.sessions == "all" else names(args.sessions)
    settings = SuiteSettings(models=names(args.models), methods=names(args.methods),
                             splits=names(args.splits), sessions=sessions,
                             trials=args.trials, frames=args.suite_frames, tq=not args.no_tq,
                             difficulty=args.difficulty,
                             tq_readings=names(args.tq_readings), prune=prune)
    if args.tables_only:  # the settings the suite in --out was run with, when recorded
        from pathlib import Path

        recorded = Path(args.out) / "suite.json"
        if recorded.exists():
            d = json.loads(recorded.read_text())
            d.pop("schema", None)
            settings = SuiteSettings.from_dict(d)
        tables = write_tables(read_records(Path(args.out) / "jobs.jsonl"), settings, args.out)
    else:
        try:
            tables = run_suite(settings, args.out, resume=args.resume,
                               log=lambda msg: print(f"[suite] {msg}", file=sys.stderr,
                                                     flush=True))
        except KeyboardInterrupt:
            print(f"[suite] interrupted: finished jobs are in {args.out}/jobs.jsonl "
                  "(continue with --resume)", file=sys.stderr)
            return 130
    print(json.dumps(tables, indent=2) if args.json else terminal(tables))
    print(f"[suite] tables: {args.out}/tables.md, tables.json, tables.png", file=sys.stderr)
    return 0


def _register_crosssession(bench_sub: argparse._SubParsersAction) -> None:
    from neurogrs.bench.crosssession import CROSS_DEFAULT_MODELS

    p = bench_sub.add_parser(
        "crosssession",
        help="train on one session, decode the mouse's other sessions (and the real session)",
        description=(
            "For each simulated suite mouse (M1/M2/M3; its three sessions share the neurons) "
            "and each model: train on S1 as `neurogrs train` does (blocked split, its test "
            "part = within-session number), decode every frame of S2 and S3. Prints per "
            "model: per-mouse and pooled balanced accuracy with the best constant predictor "
            "beside; the real session (docs/data.md) split forward in time (blocked, "
            "--real-blocks chunks, test part); a summary with the difference to nn1. Writes "
            "OUT/crosssession.json and OUT/crosssession.md. The decoded sessions are only "
            "reported, never used for any decision."),
    )
    p.add_argument("--models", default=",".join(CROSS_DEFAULT_MODELS), metavar="M1,M2",
                   help="zoo model names or .keras files, comma-separated (default: the "
                        "frame-wise zoo and the temporal-context MLPs, "
                        f"{','.join(CROSS_DEFAULT_MODELS)}; any zoo candidate by name)")
    p.add_argument("--mice", default="M1,M2,M3", help="suite mice (default M1,M2,M3)")
    p.add_argument("--frames", type=int, default=3000,
                   help="frames per simulated session (default 3000, the suite's)")
    p.add_argument("--epochs", type=int, default=150, help="training epochs (default 150)")
    p.add_argument("--blocks", type=int, default=1,
                   help="blocked split of S1 over K chunks (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of split and training (default 0)")
    p.add_argument("--real-session", default="auto", metavar="PATH",
                   help="the real session (default auto: $NEUROGRS_NELPY, else "
                        "../shared/data/nelpy_linear_track/nelpy_linear_track.npz beside the "
                        "checkout; skipped with a note when absent)")
    p.add_argument("--real-blocks", type=int, default=5, metavar="K",
                   help="forward-in-time blocked split of the real session over K chunks "
                        "(default 5: its second half is rest, one chunk would test on rest only)")
    p.add_argument("--no-real", action="store_true", help="skip the real session")
    p.add_argument("--out", default="bench-crosssession", metavar="DIR",
                   help="output directory for crosssession.json and .md (default "
                        "bench-crosssession)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_bench_crosssession)


def _bench_crosssession(args: argparse.Namespace) -> int:
    from neurogrs.bench.crosssession import (CrossSessionSettings, run_crosssession,
                                             write_outputs)
    from neurogrs.bench.crosssession_tables import terminal

    def names(text: str) -> tuple[str, ...]:
        return tuple(n.strip() for n in text.split(",") if n.strip())

    settings = CrossSessionSettings(
        models=names(args.models), mice=names(args.mice), frames=args.frames,
        epochs=args.epochs, blocks=args.blocks, seed=args.seed,
        real_session="" if args.no_real else args.real_session, real_blocks=args.real_blocks)
    result = run_crosssession(settings, log=lambda msg: print(f"[crosssession] {msg}",
                                                              file=sys.stderr, flush=True))
    paths = write_outputs(result, args.out)
    print(json.dumps(result, indent=2) if args.json else terminal(result))
    print(f"[crosssession] wrote {paths['json']} and {paths['md']}", file=sys.stderr)
    return 0


def _bench_inference(args: argparse.Namespace) -> int:
    from neurogrs.artifact import load_artifact
    from neurogrs.bench.inference import InferenceBenchSettings, format_table, run_inference_bench

    art = load_artifact(args.artifact)
    settings = InferenceBenchSettings(frames=args.frames, keras_frames=args.keras_frames,
                             seed=args.seed, peers=not args.no_peers, gap_ms=args.gap_ms)
    result = run_inference_bench(
        art.spec, art.hash, settings,
        engine_options={"march_native": args.march_native, "sparse": args.sparse},
        log=lambda msg: print(f"[bench] {msg}", file=sys.stderr),
    )
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def service_bench_settings(args: argparse.Namespace) -> ServiceBenchSettings:
    from neurogrs.bench.service import ServiceBenchSettings

    return ServiceBenchSettings(
        artifact=args.artifact, engine=args.engine, duration_s=args.duration, rate=args.rate,
        max_frames=args.max_frames, soak_frames=args.soak_frames, deadline_ms=args.deadline_ms,
        soak_rate=args.soak_rate, search_start=args.search_start, search_upper=args.search_max,
        churn_sessions=args.churn_sessions, churn_frames=args.churn_frames,
        churn_restart_every=args.churn_restart_every, session_idle_s=args.session_idle_s)


def _bench_service(args: argparse.Namespace) -> int:
    from neurogrs.bench.service import format_table, run_bench

    results = run_bench(service_bench_settings(args), log=sys.stderr)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0
