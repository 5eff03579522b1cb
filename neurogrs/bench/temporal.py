"""Temporal-context decoders against frame-wise ones: `python -m neurogrs.bench.temporal`.

Two honest settings (docs/temporal.md has the tables this prints):

* **Across sessions** on the simulated suite (`neurogrs.simulate.SUITE`: 3 mice x 3
  sessions of 3,000 frames; sessions of a mouse record the same neurons): train on
  session 1 (blocked 8:1:1 split), decode every frame of sessions 2 and 3, each run in
  time order from a fresh state.
* **Forward in time** on the real session (`../shared/data/nelpy_linear_track`): blocked
  split over `--blocks` chunks (in each chunk the first 80% trains, the last 10% tests;
  one chunk would test on rest only), test part scored causally.

`--dropouts` instead sweeps the input dropout rate of the temporal cores (and, as the
control, of the frame-wise ones): trained on session 1, the rate is chosen on **session 2**
of each mouse and reported on **session 3**, which the choice never saw (that is how
`neurogrs.zoo.INPUT_DROPOUT` was chosen).

`--c-cost` instead times each model's frame-wise core in C at 273 neurons (a proxy until
the C engine runs the stateful layers). `--taus` instead sweeps the trace time constants of `nn1_traces` and reports the
validation part of each mouse's session 1 only (never a test part, never the real
session): that is how `neurogrs.zoo.TRACE_TAUS` was chosen.

Every number is balanced accuracy; each cell is trained with seeds 0..`--seeds`-1 and the
summary tables average them (single 300-frame test blocks scatter by several points).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from neurogrs.session import Session
from neurogrs.simulate import SUITE, simulate_session

__all__ = ["suite_sessions", "measure_suite", "measure_real", "tau_sweep", "dropout_sweep",
           "main"]

DEFAULT_MODELS = ("nn1", "nn1_traces", "nn1_filter", "nn1_traces_filter",
                  "nn2", "nn2_traces", "nn2_filter", "nn2_traces_filter")
TAU_SETS = ((), (3.0,), (10.0,), (30.0,), (100.0,), (2.0, 5.0, 10.0), (3.0, 10.0, 30.0),
            (10.0, 30.0, 100.0))
REAL = Path(__file__).resolve().parents[2].parent / "shared/data/nelpy_linear_track/nelpy_linear_track.npz"


def suite_sessions(n_frames: int = 3000) -> dict[str, list[Session]]:
    """The simulated suite in memory: {mouse: [S1, S2, S3]} (as `simulate --suite`)."""
    out = {}
    for name, n, seed, targets in SUITE:
        out[name] = [simulate_session(n_neurons=n, n_frames=n_frames, seed=seed,
                                      label1_fraction=target, session_index=k)
                     for k, target in enumerate(targets)]
    return out


def _train(session: Session, model: str, epochs: int, seed: int, blocks: int = 1,
           blueprint=None):
    from neurogrs.pruning.train import TrainSettings, train
    from neurogrs.splits import SplitSettings

    config = TrainSettings(model=model, epochs=epochs, seed=seed,
                           split=SplitSettings(blocks=blocks))
    with warnings.catch_warnings():  # single-class warnings are in the numbers
        warnings.simplefilter("ignore")
        return train(session, config, progress=False, blueprint=blueprint)


def measure_suite(models, epochs: int, seeds=(0,), n_frames: int = 3000) -> list[dict]:
    """One row per (seed, model, mouse): session-1 val/test and sessions 2/3 balanced
    accuracy."""
    from neurogrs.evaluate import evaluate_spec

    rows = []
    suite = suite_sessions(n_frames)
    for seed, (mouse, sessions), model in itertools.product(seeds, suite.items(), models):
        t0 = time.perf_counter()
        result = _train(sessions[0], model, epochs, seed)
        row = {"seed": seed, "model": model, "mouse": mouse,
               "s1_val": result.metrics["val"]["balanced_accuracy"],
               "s1_test": result.metrics["test"]["balanced_accuracy"]}
        for k, other in enumerate(sessions[1:], start=2):
            m = evaluate_spec(result.spec, other, None, None)
            row[f"s{k}"] = m["balanced_accuracy"]
            row[f"s{k}_baseline_acc"] = m["baseline_accuracy"]
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def measure_real(models, epochs: int, seeds=(0,), blocks: int = 5,
                 path: Path = REAL) -> list[dict]:
    """One row per (seed, model) on the real session: val and test balanced accuracy."""
    from neurogrs.formats import load_session

    session = load_session(path)
    rows = []
    for seed, model in itertools.product(seeds, models):
        t0 = time.perf_counter()
        m = _train(session, model, epochs, seed, blocks=blocks).metrics
        rows.append({"seed": seed, "model": model, "val": m["val"]["balanced_accuracy"],
                     "test": m["test"]["balanced_accuracy"], "test_acc": m["test"]["accuracy"],
                     "test_baseline_acc": m["test"]["baseline_accuracy"],
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def tau_sweep(tau_sets, epochs: int, seeds=(0,), n_frames: int = 3000) -> list[dict]:
    """nn1_traces with each set of time constants (empty: plain nn1): session-1 validation
    balanced accuracy per mouse, averaged over `seeds`."""
    from neurogrs.zoo import FRAMEWISE

    suite = suite_sessions(n_frames)
    rows = []
    for taus in tau_sets:
        bp = ((("traces", tuple(taus)),) if taus else ()) + FRAMEWISE["nn1"]
        vals = {mouse: float(np.mean([
            _train(s[0], "nn1_traces" if taus else "nn1", epochs, seed, blueprint=bp)
            .metrics["val"]["balanced_accuracy"] for seed in seeds]))
            for mouse, s in suite.items()}
        rows.append({"taus": list(taus), **vals, "mean": float(np.mean(list(vals.values())))})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def dropout_sweep(rates, epochs: int, seeds=(0,), cores=("nn1", "nn2"),
                  n_frames: int = 3000) -> list[dict]:
    """Each core, frame-wise and with traces at `TRACE_TAUS`, with input dropout at each rate
    (0: none): session-1 validation, session 2 (where the rate is chosen) and session 3
    (held out), balanced accuracy averaged over mice and `seeds`."""
    from neurogrs.evaluate import evaluate_spec
    from neurogrs.zoo import FRAMEWISE, TRACE_TAUS

    suite = suite_sessions(n_frames)
    rows = []
    for core, traces, rate in itertools.product(cores, (False, True), rates):
        bp = ((("traces", TRACE_TAUS),) if traces else ()) \
            + ((("dropout", float(rate)),) if rate else ()) + FRAMEWISE[core]
        model = f"{core}_traces" if traces else core
        cells = []
        for seed, sessions in itertools.product(seeds, suite.values()):
            result = _train(sessions[0], model, epochs, seed, blueprint=bp)
            cells.append([result.metrics["val"]["balanced_accuracy"]]
                         + [evaluate_spec(result.spec, other, None, None)["balanced_accuracy"]
                            for other in sessions[1:3]])
        val, s2, s3 = np.mean(cells, axis=0)
        rows.append({"model": model, "input_dropout": float(rate), "s1_val": val, "s2": s2,
                     "s3": s3})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _dropout_table(rows: list[dict]) -> str:
    lines = ["| model | input dropout | S1 val | S2 (choice) | S3 (held out) | S3 vs nn1 |",
             "|---|---|---|---|---|---|"]
    base = next((r["s3"] for r in rows if r["model"] == "nn1" and r["input_dropout"] == 0), None)
    for r in rows:
        delta = "" if base is None else f"{r['s3'] - base:+.3f}"
        lines.append(f"| {r['model']} | {r['input_dropout']:g} | {r['s1_val']:.3f} "
                     f"| {r['s2']:.3f} | {r['s3']:.3f} | {delta} |")
    return "\n".join(lines)


def core_c_cost(models, n_neurons: int = 273, frames: int = 3000, rounds: int = 5) -> list[dict]:
    """Per-frame time inside C (median of `frames`, best of `rounds`) of each model's core:
    the frame-wise network at the width the traces give it (n * (1 + m) inputs), with
    random weights. A proxy until the C engine runs the stateful layers themselves; what
    the stateful layers add is counted in FLOPs (`spec.count_flops()` includes them).
    Frame-wise CNNs are timed as they are; CNN cores behind traces are skipped."""
    import tempfile

    from neurogrs.inference.c_engine import CEngine
    from neurogrs.layers import is_stateful
    from neurogrs.zoo import ZOO, init_spec, is_cnn, spec_from_blueprint

    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as cache, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in models:
            spec = init_spec(model, n_neurons, rng, random_bias=True)
            traces = is_stateful(spec.layers[0])
            width = int(np.prod(spec.shapes()[1 if traces else 0]))
            core_bp = tuple(d for d in ZOO[model] if d[0] not in ("traces", "filter"))
            cnn = is_cnn(core_bp)
            if cnn and traces:  # a CNN core on [n, n, 1+m]: no proxy
                continue
            if cnn:  # frame-wise CNN: itself, on its n x n grid
                core = spec_from_blueprint(core_bp, n_neurons, rng, random_bias=True)
                width = n_neurons
            else:
                core = spec_from_blueprint(core_bp, width, rng, random_bias=True)
            eng = CEngine(core, core.content_hash(), sparse="dense", cache_dir=cache)
            x = rng.normal(size=(frames, core.n_inputs)).astype(np.float32)
            us = min(float(np.median(eng.bench_in_c(x))) / 1e3 for _ in range(rounds))
            rows.append({"model": model, "core_inputs": width, "core_c_us": us,
                         "flops": spec.count_flops(), "core_flops": core.count_flops()})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _cost_table(rows: list[dict]) -> str:
    lines = ["| model | core inputs | core per frame in C (µs) | FLOPs (with stateful layers) "
             "| core FLOPs |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['core_inputs']} | {r['core_c_us']:.2f} "
                     f"| {r['flops']:,} | {r['core_flops']:,} |")
    return "\n".join(lines)


def _suite_table(rows: list[dict]) -> str:
    lines = ["| seed | model | mouse | S1 val | S1 test | S2 | S3 | mean S2+S3 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['model']} | {r['mouse']} | {r['s1_val']:.3f} "
                     f"| {r['s1_test']:.3f} "
                     f"| {r['s2']:.3f} | {r['s3']:.3f} | {(r['s2'] + r['s3']) / 2:.3f} |")
    lines += ["", "Means over mice and seeds:", "",
              "| model | S1 val | S1 test | S2+S3 (decoded sessions) | vs nn1 |",
              "|---|---|---|---|---|"]
    cross = {m: np.mean([[r["s2"], r["s3"]] for r in rows if r["model"] == m])
             for m in dict.fromkeys(r["model"] for r in rows)}
    for model, value in cross.items():
        mine = [r for r in rows if r["model"] == model]
        delta = f"{value - cross['nn1']:+.3f}" if "nn1" in cross else ""
        lines.append(f"| {model} | {np.mean([r['s1_val'] for r in mine]):.3f} "
                     f"| {np.mean([r['s1_test'] for r in mine]):.3f} | {value:.3f} | {delta} |")
    return "\n".join(lines)


def _real_table(rows: list[dict]) -> str:
    lines = ["| seed | model | val balanced | test balanced | test acc | test best constant |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['model']} | {r['val']:.3f} | {r['test']:.3f} "
                     f"| {r['test_acc']:.3f} | {r['test_baseline_acc']:.3f} |")
    test = {m: np.mean([r["test"] for r in rows if r["model"] == m])
            for m in dict.fromkeys(r["model"] for r in rows)}
    lines += ["", "Means over seeds:", "", "| model | val balanced | test balanced | vs nn1 |",
              "|---|---|---|---|"]
    for model, value in test.items():
        val = np.mean([r["val"] for r in rows if r["model"] == model])
        delta = f"{value - test['nn1']:+.3f}" if "nn1" in test else ""
        lines.append(f"| {model} | {val:.3f} | {value:.3f} | {delta} |")
    return "\n".join(lines)


def _tau_table(rows: list[dict]) -> str:
    mice = [k for k in rows[0] if k not in ("taus", "mean")]
    lines = ["| taus (frames) | " + " | ".join(f"{m} S1 val" for m in mice) + " | mean |",
             "|---|" + "---|" * (len(mice) + 1)]
    for r in rows:
        lines.append(f"| {', '.join(f'{t:g}' for t in r['taus']) or 'none (nn1)'} | "
                     + " | ".join(f"{r[m]:.3f}" for m in mice) + f" | {r['mean']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m neurogrs.bench.temporal",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help="comma-separated zoo names (default: nn1/nn2 and their temporal variants)")
    p.add_argument("--epochs", type=int, default=150,
                   help="training epochs (default 150, as `neurogrs train`)")
    p.add_argument("--seeds", type=int, default=2, help="train with seeds 0..N-1 (default 2)")
    p.add_argument("--blocks", type=int, default=5, help="real session: split chunks")
    p.add_argument("--only", choices=("suite", "real"), help="run one of the two settings")
    p.add_argument("--c-cost", action="store_true",
                   help="instead: per-frame C time of each model's core at 273 neurons")
    p.add_argument("--taus", action="store_true",
                   help="sweep nn1_traces time constants on session-1 validation parts instead")
    p.add_argument("--dropouts", metavar="R,R,...",
                   help="instead: sweep the input dropout rate (e.g. 0,0.2,0.35,0.5) of nn1/nn2, "
                        "frame-wise and with traces; chosen on session 2, reported on session 3")
    p.add_argument("--real-path", default=str(REAL))
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.c_cost:
        print(_cost_table(core_c_cost(models)))
        return 0
    if args.dropouts:
        rates = [float(r) for r in args.dropouts.split(",") if r.strip()]
        if not rates or any(not 0 <= r < 1 for r in rates):
            p.error(f"--dropouts: rates in [0, 1) expected, got {args.dropouts!r}")
        print(_dropout_table(dropout_sweep(rates, args.epochs, range(args.seeds))))
        return 0
    if args.taus:
        print(_tau_table(tau_sweep(TAU_SETS, args.epochs, range(args.seeds))))
        return 0
    if args.only in (None, "suite"):
        print(f"## simulated suite: train S1, decode S2/S3 ({args.epochs} epochs, "
              f"balanced accuracy)\n")
        print(_suite_table(measure_suite(models, args.epochs, range(args.seeds))))
    if args.only in (None, "real"):
        print(f"\n## real session, blocked split over {args.blocks} chunks "
              f"({args.epochs} epochs, balanced accuracy)\n")
        print(_real_table(measure_real(models, args.epochs, range(args.seeds), args.blocks,
                                       Path(args.real_path))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
