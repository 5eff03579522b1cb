"""CLI: `neurogrs bench inference ARTIFACT [--json] [--frames N]` (thin: parses, delegates)."""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register_bench"]


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
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


def _bench_inference(args: argparse.Namespace) -> int:
    from neurogrs.artifact import load_artifact
    from neurogrs.inference.bench import BenchSettings, format_table, run_inference_bench

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
