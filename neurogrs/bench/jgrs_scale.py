"""GRS versus JGRS at scale: wall time, retrainings and size on simulated sessions.

    python -m neurogrs.bench.jgrs_scale --neurons 273 --seeds 0,1,2 --out scale-273.json
    python -m neurogrs.bench.jgrs_scale --neurons 1000 --first-width 128 --seeds 0
    python -m neurogrs.bench.jgrs_scale --neurons 1000 --first-width 128 --score-timing
    python -m neurogrs.bench.jgrs_scale --model cnn1 --config cnn.toml --cold

Per seed: simulate a session (that seed), train nn1 (its first Dense layer `--first-width`
units wide; 32 is the zoo's nn1; `--model` picks another zoo model) for the initial
epochs, prune the same initial model with GRS and with JGRS (paper defaults unless
`--config` says otherwise), and record wall time, retrainings, trainer compiles,
structure, parameters, FLOPs and D_V / D_E metrics. The JSON holds every run and the
ratios summed over seeds (retrainings, wall) and the geometric mean of the parameter
ratio (algorithms.md §3: compare over seeds).

Compiles: by default the trainer programs both searches use (1 candidate slot, one per
prunable layer) are compiled before either runs (`warm_up`, its seconds recorded), so the
wall times compare the algorithms; `--cold` clears the compile cache before each method
instead, so each pays the compiles it needs as a fresh process would.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from neurogrs.errors import ConfigError
from neurogrs.pruning.data import evaluate, prepare
from neurogrs.pruning import fit_graph as G
from neurogrs.pruning.fit import FitSettings, candidate_slots, fit, fit_many
from neurogrs.pruning.grs import grs
from neurogrs.pruning.jgrs import jgrs
from neurogrs.pruning.settings import PruneSettings
from neurogrs.pruning.surgery import full_masks, prunable_layers
from neurogrs.simulate import simulate_session
from neurogrs.simulate_settings import DIFFICULTIES, SimulationSettings
from neurogrs.splits import SplitSettings, make_split
from neurogrs.zoo import ZOO, spec_from_blueprint

__all__ = ["nn1_wide", "run_seed", "main"]


def nn1_wide(first_width: int):
    """nn1's blueprint with its first Dense layer `first_width` units wide."""
    return ((("dense", first_width, "relu"),) + ZOO["nn1"][1:])


def _run(fn, name, spec, data, settings, seed, cold: bool):
    if cold:  # this method pays every compile it needs, as in a fresh process
        G.compiled.cache_clear()
    traces = G.trace_count()
    r = fn(spec, data, settings, np.random.default_rng(seed))
    m = evaluate(r.sliced, data)
    return {"method": name, "seconds": round(r.seconds, 2), "retrainings": r.retrainings,
            "compiles": G.trace_count() - traces,
            "structure": r.sliced.structure(), "params": r.sliced.count_params(),
            "flops": r.sliced.count_flops(), "val": m["val"][settings.metric],
            "test": m["test"][settings.metric], "a0": r.a0,
            "jumps": sum(1 for s in r.trajectory if s.phase == 1),
            "grs_iterations": sum(1 for s in r.trajectory if s.phase == 2)}


def warm_up(spec, data, settings: PruneSettings) -> float:
    """Compile the trainer programs a search uses (1 and every-layer candidate slots) with
    a one-epoch fit; returns the seconds. The shapes are fixed (`pruning.fit`), so the
    searches after it compile nothing: their wall time is the algorithm's."""
    t0 = time.perf_counter()
    masks = full_masks(spec)
    one = replace(settings.fit_settings(0), epochs=1)
    for k in sorted({1, candidate_slots(spec, len(prunable_layers(spec)))}):
        fit_many(spec, [masks] * k, data.x_train, data.y_train, one, seed=0)
    return round(time.perf_counter() - t0, 2)


def model_blueprint(model: str, first_width: int):
    """nn1 with its first layer `first_width` wide, or a zoo model as it is."""
    if model == "nn1":
        return nn1_wide(first_width), f"nn1w{first_width}"
    if model not in ZOO:
        raise ConfigError(f"--model must be one of {sorted(ZOO)}, got {model!r}")
    return ZOO[model], model


def run_seed(neurons: int, first_width: int, seed: int, settings: PruneSettings,
             frames: int | None = None, methods: tuple[str, ...] = ("jgrs", "grs"),
             cold: bool = False, model: str = "nn1", difficulty: str = "standard") -> dict:
    bp, name = model_blueprint(model, first_width)
    session = simulate_session(n_neurons=neurons, n_frames=frames, seed=seed,
                               settings=SimulationSettings.for_difficulty(difficulty))
    split = make_split(session.labels, SplitSettings(mode=settings.split, blocks=settings.blocks),
                       np.random.default_rng(seed))
    spec = spec_from_blueprint(bp, neurons, np.random.default_rng(seed), session.positions,
                               name=name)
    data = prepare(session, split, spec)
    t0 = time.perf_counter()
    spec = fit(spec, data.x_train, data.y_train,
               FitSettings(epochs=settings.initial_epochs), seed=seed)
    out = {"seed": seed, "neurons": neurons, "model": name, "first_width": first_width,
           "difficulty": difficulty,
           "initial_structure": spec.structure(), "initial_params": spec.count_params(),
           "train_seconds": round(time.perf_counter() - t0, 2), "runs": []}
    if not cold:
        out["warm_up_seconds"] = warm_up(spec, data, settings)
    for name in methods:
        fn = {"jgrs": jgrs, "grs": grs}[name]
        out["runs"].append(_run(fn, name, spec, data, settings, seed, cold))
        print(json.dumps(out["runs"][-1]), flush=True)
    return out


def score_timing(neurons: int, first_width: int, repeats: int = 5) -> dict:
    """Seconds to score every unit of a fresh nn1 without retraining: stacked (the scorer)
    versus one `decision_metric` forward per candidate (best of `repeats`)."""
    from neurogrs.pruning.data import decision_metric
    from neurogrs.pruning.score import RemovalScorer
    from neurogrs.pruning.surgery import full_masks, prunable_layers, zero_masked

    session = simulate_session(n_neurons=neurons, seed=0)
    split = make_split(session.labels, SplitSettings(), np.random.default_rng(0))
    spec = spec_from_blueprint(nn1_wide(first_width), neurons, np.random.default_rng(0))
    data = prepare(session, split, spec)
    masks = full_masks(spec)
    cands = [(l, int(u)) for l in prunable_layers(spec) for u in np.flatnonzero(masks[l])]
    scorer = RemovalScorer.for_spec(spec, data, "balanced_accuracy")

    def one_by_one():
        for layer, unit in cands:
            m = {k: v.copy() for k, v in masks.items()}
            m[layer][unit] = False
            decision_metric(zero_masked(spec, m), data, "balanced_accuracy")

    def best(fn):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    stacked = best(lambda: scorer.score(spec, masks, cands))
    single = best(one_by_one)
    return {"neurons": neurons, "first_width": first_width, "candidates": len(cands),
            "val_frames": int(data.y_val.size), "stacked_s": round(stacked, 4),
            "one_forward_per_candidate_s": round(single, 4), "speedup": round(single / stacked, 1)}


def summary(seeds: list[dict]) -> dict:
    def total(method, key):
        return sum(r[key] for s in seeds for r in s["runs"] if r["method"] == method)

    def pick(seed, method):
        return next(r for r in seed["runs"] if r["method"] == method)

    def removed(method):  # hidden units removed, summed over seeds
        return sum(sum(s["initial_structure"][:-1]) - sum(pick(s, method)["structure"][:-1])
                   for s in seeds)

    ratios = [pick(s, "jgrs")["params"] / pick(s, "grs")["params"] for s in seeds]
    per_unit = {m: total(m, "retrainings") / max(1, removed(m)) for m in ("grs", "jgrs")}
    return {"retrainings_grs_over_jgrs": total("grs", "retrainings") / total("jgrs", "retrainings"),
            "units_removed": {m: removed(m) for m in ("grs", "jgrs")},
            "retrainings_per_removed_unit": per_unit,
            "wall_grs_over_jgrs": total("grs", "seconds") / total("jgrs", "seconds"),
            "params_jgrs_over_grs_geomean": math.exp(np.mean(np.log(ratios))),
            "test_jgrs_minus_grs_mean": float(np.mean([pick(s, "jgrs")["test"]
                                                       - pick(s, "grs")["test"] for s in seeds]))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--neurons", type=int, default=273)
    p.add_argument("--model", default="nn1", help="nn1 (default; see --first-width) or "
                   "another zoo model (cnn1, ...)")
    p.add_argument("--first-width", type=int, default=32)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default="standard",
                   help="simulator setting (hard: lower decodability)")
    p.add_argument("--seeds", default="0")
    p.add_argument("--config", default=None, help="PruneSettings TOML (default: paper's)")
    p.add_argument("--methods", default="jgrs,grs", help="jgrs, grs or both (default)")
    p.add_argument("--cold", action="store_true",
                   help="clear the trainer's compile cache before each method, so each pays "
                        "its own XLA compiles (default: compile once before both, not timed)")
    p.add_argument("--score-timing", action="store_true",
                   help="only time the no-retrain scoring of every unit (stacked vs one by one)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.score_timing:
        print(json.dumps(score_timing(args.neurons, args.first_width)))
        return 0
    settings = PruneSettings.from_file(args.config)
    methods = tuple(m.strip() for m in args.methods.split(","))
    seeds = [run_seed(args.neurons, args.first_width, int(s), settings, args.frames, methods,
                      args.cold, args.model, args.difficulty)
             for s in args.seeds.split(",")]
    both = set(methods) == {"jgrs", "grs"}
    result = {"settings": settings.to_dict(), "cold": args.cold, "seeds": seeds,
              "summary": summary(seeds) if both else {}}
    print(json.dumps(result["summary"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
