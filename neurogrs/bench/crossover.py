"""Measure where zero-skipping C beats dense C: `python -m neurogrs.bench.crossover`.

For each model and each weight density, zero the smallest weights of every weighted layer
(TQ-style), build the dense and the sparse C variant, and time both inside C (median of
the per-frame times over --frames frames, alternating the two builds so both see the
same machine load). Prints a table and the highest density at which sparse code won;
`SPARSE_CROSSOVER` in codegen/options.py is set from this (docs/codegen.md has the run).
"""
from __future__ import annotations

import argparse
import tempfile
import warnings

import numpy as np

from neurogrs.spec import Conv2D, Dense, ModelSpec
from neurogrs.zoo import init_spec

__all__ = ["sparsify", "measure"]

DENSITIES = (1.0, 0.6, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.07, 0.05, 0.03)


def sparsify(spec: ModelSpec, density: float) -> ModelSpec:
    """Keep the largest `density` fraction of |w| in every weighted layer, zero the rest."""
    layers = []
    for layer in spec.layers:
        if isinstance(layer, (Dense, Conv2D)) and density < 1.0:
            k = layer.kernel.copy()
            k[np.abs(k) < np.quantile(np.abs(k), 1.0 - density)] = 0.0
            if isinstance(layer, Dense):
                layers.append(Dense(k, layer.bias, layer.activation))
            else:
                layers.append(Conv2D(k, layer.bias, layer.strides, layer.activation))
        else:
            layers.append(layer)
    return ModelSpec(spec.preprocessing, tuple(layers), spec.label_names, name=spec.name)


def measure(model: str, n: int, densities=DENSITIES, frames: int = 3000, rounds: int = 5,
            seed: int = 0) -> list[dict]:
    from neurogrs.inference.c_engine import CEngine

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = init_spec(model, n, rng, random_bias=True)
    x = rng.normal(size=(frames, n)).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for d in densities:
            spec = sparsify(base, d)
            h = spec.content_hash()
            eng = {m: CEngine(spec, h, sparse=m, cache_dir=cache) for m in ("dense", "sparse")}
            med: dict[str, list[float]] = {"dense": [], "sparse": []}
            for _ in range(rounds):
                for m in ("dense", "sparse"):
                    med[m].append(float(np.median(eng[m].bench_in_c(x))) / 1e3)
            rows.append({"model": model, "n": n, "density": d,
                         "dense_us": min(med["dense"]), "sparse_us": min(med["sparse"])})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"{'model':<6}{'N':>5}{'density':>9}{'dense us':>10}{'sparse us':>11}{'sparse/dense':>14}")
    for model, n in (("nn1", 273), ("cnn1", 273)):
        rows = measure(model, n, frames=args.frames, rounds=args.rounds)
        wins = [r["density"] for r in rows if r["sparse_us"] < r["dense_us"]]
        for r in rows:
            print(f"{r['model']:<6}{r['n']:>5}{r['density']:>9.2f}{r['dense_us']:>10.2f}"
                  f"{r['sparse_us']:>11.2f}{r['sparse_us'] / r['dense_us']:>14.2f}")
        print(f"{model}: sparse code wins at density <= {max(wins) if wins else 'never'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
