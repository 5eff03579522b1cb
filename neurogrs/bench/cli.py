"""CLI: `neurogrs bench inference|service|pruning`: the benchmark room's commands (thin: parse, delegate)."""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register_bench"]


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    _register_inference(bench_sub)
    _register_service(bench_sub)
    _register_pruning(bench_sub)


def _register_inference(bench_sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--sparse", choices=("auto", "dense", "sparse"), default="auto",
                   help="C code for sparse layers (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random frames")
    p.add_argument("--gap-ms", type=float, default=0.0, metavar="MS",
                   help="idle time before each call, like frames of a live session (caches "
                        "go cold); use fewer --frames, e.g. --gap-ms 20 --frames 150")
    p.set_defaults(func=_bench_inference)


def _register_service(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "service", help="replay -> service -> listener on loopback, with a bare echo floor",
        description="End-to-end latency, loss and deadline misses at 10 Hz, at an aggregate "
                    "rate, at the maximum rate; a bare pyzmq+msgpack echo as the floor; a soak.")
    p.add_argument("artifact")
    p.add_argument("--engine", default="c", choices=("c", "numba", "numpy"))
    p.add_argument("--duration", type=float, default=10.0, help="seconds per paced run")
    p.add_argument("--rate", type=float, default=1000.0, help="aggregate frames/s run")
    p.add_argument("--max-frames", type=int, default=50_000, help="frames in the max-rate run")
    p.add_argument("--soak-frames", type=int, default=1_000_000, help="soak length (0: skip)")
    p.add_argument("--soak-rate", type=float, default=None,
                   help="soak rate in frames/s (default: 80%% of the maximum sustained rate)")
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


def _bench_pruning(args: argparse.Namespace) -> int:
    from neurogrs.bench.pruning import format_table, run_retrain_bench

    result = run_retrain_bench(args.neurons, args.frames, rounds=args.rounds, epochs=args.epochs,
                               naive_epochs=args.naive_epochs, seed=args.seed,
                               log=lambda msg: print(f"[bench] {msg}", file=sys.stderr))
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def _bench_inference(args: argparse.Namespace) -> int:
    from neurogrs.artifact import load_artifact
    from neurogrs.bench.inference import BenchSettings, format_table, run_inference_bench

    art = load_artifact(args.artifact)
    settings = BenchSettings(frames=args.frames, keras_frames=args.keras_frames,
                             seed=args.seed, peers=not args.no_peers, gap_ms=args.gap_ms)
    result = run_inference_bench(
        art.spec, art.hash, settings,
        engine_options={"march_native": args.march_native, "sparse": args.sparse},
        log=lambda msg: print(f"[bench] {msg}", file=sys.stderr),
    )
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def _bench_service(args: argparse.Namespace) -> int:
    from neurogrs.bench.service import BenchConfig, format_table, run_bench

    cfg = BenchConfig(artifact=args.artifact, engine=args.engine, duration_s=args.duration,
                      rate=args.rate, max_frames=args.max_frames, soak_frames=args.soak_frames,
                      deadline_ms=args.deadline_ms, soak_rate=args.soak_rate)
    results = run_bench(cfg, log=sys.stderr)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0
