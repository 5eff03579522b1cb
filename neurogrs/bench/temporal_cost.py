"""What temporal context costs in C per frame: `python -m neurogrs.bench.temporal_cost`.

nn1 at N neurons (default 273, random weights: the cost does not depend on their values),
plain and with its temporal-context layers (neurogrs/layers_temporal.py): LeakyTraces with
m = 2 and 3 time constants in front (the frame and its m traces: the first Dense reads
N * (1 + m) inputs), a ForwardFilter after the softmax, and both; plus nn1 on 4N inputs
without traces, which separates the traces' own cost from the wider first Dense's. Every variant is built
as the C engine and timed inside C (`<prefix>_bench`: clock_gettime around each call, the
frames run as one stream from a fresh state), the variants alternating for --rounds
rounds so all see the same machine load; per variant the best round's median and the
median round's p99, in microseconds per frame. Each variant's outputs are checked against
the numpy reference `forward()` of the same sequence (max |d| column). Last, the zoo's
temporal MLPs as shipped (`zoo nn1_traces`, ...: one trace, input dropout, which is an
identity at inference).
"""
from __future__ import annotations

import argparse
import tempfile
import warnings

import numpy as np

from neurogrs.layers_temporal import ForwardFilter, LeakyTraces, decays_from_taus
from neurogrs.spec import ModelSpec, forward
from neurogrs.zoo import init_spec

__all__ = ["variants", "measure", "main"]

TAUS = {2: (3.0, 20.0), 3: (2.0, 8.0, 30.0)}  # frames; the cost depends only on m
ZOO_TEMPORAL = ("nn1_traces", "nn2_traces", "nn1_traces_filter", "nn2_traces_filter")


def _filter() -> ForwardFilter:
    return ForwardFilter(np.array([[0.95, 0.05], [0.1, 0.9]], np.float32),
                         np.array([0.6, 0.4], np.float32))


def variants(n: int = 273, seed: int = 0) -> dict[str, ModelSpec]:
    """nn1 at n neurons, plain and with traces (m = 2, 3), a forward filter, both; nn1 on
    4n inputs without traces; the zoo's temporal MLPs (`ZOO_TEMPORAL`)."""
    def nn1(inputs: int) -> ModelSpec:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return init_spec("nn1", inputs, np.random.default_rng(seed), random_bias=True)

    plain = nn1(n)
    out = {"nn1": plain}
    for m in (2, 3):
        wide = nn1(n * (1 + m))
        out[f"nn1 + traces m={m}"] = ModelSpec(
            plain.preprocessing, (LeakyTraces(decays_from_taus(TAUS[m])), *wide.layers),
            plain.label_names, name=f"nn1_traces{m}")
    out["nn1 on N x 4 inputs, no traces"] = nn1(n * 4)  # what the wider first Dense costs
    out["nn1 + filter"] = ModelSpec(plain.preprocessing, (*plain.layers, _filter()),
                                    plain.label_names, name="nn1_filter")
    wide = nn1(n * 4)
    out["nn1 + traces m=3 + filter"] = ModelSpec(
        plain.preprocessing, (LeakyTraces(decays_from_taus(TAUS[3])), *wide.layers, _filter()),
        plain.label_names, name="nn1_traces3_filter")
    for name in ZOO_TEMPORAL:  # the zoo's own designs (one trace, input dropout)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[f"zoo {name}"] = init_spec(name, n, np.random.default_rng(seed), random_bias=True)
    return out


def measure(n: int = 273, frames: int = 5000, rounds: int = 5, seed: int = 0,
            engine_options: dict | None = None) -> list[dict]:
    from neurogrs.inference.c_engine import CEngine

    specs = variants(n, seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=(frames, n)).astype(np.float32)
    xs = {k: x if s.n_inputs == n else rng.normal(size=(frames, s.n_inputs)).astype(np.float32)
          for k, s in specs.items()}
    with tempfile.TemporaryDirectory() as cache:
        engines = {k: CEngine(s, s.content_hash(), cache_dir=cache, **(engine_options or {}))
                   for k, s in specs.items()}
        diffs = {k: float(np.max(np.abs(e.predict_batch(xs[k]) - forward(specs[k], xs[k]))))
                 for k, e in engines.items()}
        med: dict[str, list[float]] = {k: [] for k in specs}
        p99: dict[str, list[float]] = {k: [] for k in specs}
        for _ in range(rounds):
            for k, e in engines.items():
                ns = e.bench_in_c(xs[k])
                med[k].append(float(np.median(ns)) / 1e3)
                p99[k].append(float(np.percentile(ns, 99)) / 1e3)
        kernels = next(iter(engines.values())).kernels
    return [{"variant": k, "n": n, "inputs_first_dense": int(s.shapes()[1][0]),
             "state_bytes": 4 * sum(1 + l.state_values(s.shapes()[i])
                                    for i, l in enumerate(s.layers)
                                    if getattr(l, "stateful", False)),
             "median_us": min(med[k]), "p99_us": float(np.median(p99[k])),
             "max_abs_diff": diffs[k], "kernels": kernels}
            for k, s in specs.items()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=273)
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kernels", default="auto", help="C kernel set (CEngine kernels=)")
    args = ap.parse_args(argv)
    rows = measure(args.neurons, args.frames, args.rounds,
                   engine_options={"kernels": args.kernels})
    base = rows[0]["median_us"]
    print(f"C per-frame cost, N={args.neurons}, {args.frames} frames x {args.rounds} rounds, "
          f"kernels {rows[0]['kernels']}")
    print(f"{'variant':<32}{'state B':>9}{'median us':>11}{'p99 us':>9}{'vs nn1':>8}"
          f"{'max|d| vs ref':>15}")
    for r in rows:
        print(f"{r['variant']:<32}{r['state_bytes']:>9}{r['median_us']:>11.3f}"
              f"{r['p99_us']:>9.3f}{r['median_us'] / base:>8.2f}{r['max_abs_diff']:>15.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
