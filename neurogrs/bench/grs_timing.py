"""One full GRS run of nn1, timed (the second half of `neurogrs bench pruning`).

A simulated session (default 273 neurons, 3,000 frames), nn1 trained as `neurogrs prune`
trains it (150 epochs), then GRS with the paper's settings (50 retraining epochs) through
the registered method, i.e. the same code `neurogrs prune --method grs` runs. The initial
training and the GRS search are timed separately; the search time includes any XLA
compile of `fit_many` programs not yet compiled in this process.
"""
from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

from neurogrs.errors import ConfigError
from neurogrs.pruning.settings import PruneSettings

__all__ = ["run_grs_timing", "format_grs_timing"]

TARGET_S = 15.0  # issue 8: one full GRS run of nn1 on this machine


def run_grs_timing(n_neurons: int = 273, n_frames: int = 3000, *, model: str = "nn1",
                   settings: PruneSettings = PruneSettings(), method: str = "grs",
                   log: Callable[[str], None] = lambda msg: None) -> dict:
    """Simulate, train the initial model, run the method once; seconds of each part."""
    from neurogrs.pruning.data import prepare
    from neurogrs.pruning.methods import method_function
    from neurogrs.pruning.train import TrainConfig, train
    from neurogrs.simulate import simulate_session
    from neurogrs.splits import SplitConfig

    if not isinstance(n_frames, int) or n_frames < 200:
        raise ConfigError(f"frames must be an integer >= 200, got {n_frames!r}")
    prune = method_function(method)
    session = simulate_session(n_neurons=n_neurons, n_frames=n_frames, seed=settings.seed)
    config = TrainConfig(model=model, epochs=settings.initial_epochs,
                         batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                         seed=settings.seed,
                         split=SplitConfig(mode=settings.split, blocks=settings.blocks))
    log(f"{method} run: training {model} ({settings.initial_epochs} epochs)")
    t0, c0 = time.perf_counter(), time.process_time()
    trained = train(session, config, progress=False)
    initial_s, initial_cpu = time.perf_counter() - t0, time.process_time() - c0
    data = prepare(session, trained.split, trained.spec)
    log(f"{method} run: pruning {model} ({settings.retrain_epochs} retraining epochs)")
    t0, c0 = time.perf_counter(), time.process_time()
    result = prune(trained.spec, data, settings, np.random.default_rng(settings.seed))
    search_s, search_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "model": model, "method": method, "n_neurons": n_neurons, "n_frames": n_frames,
        "train_frames": int(data.y_train.size), "initial_epochs": settings.initial_epochs,
        "retrain_epochs": settings.retrain_epochs, "metric": settings.metric,
        "split": settings.split, "initial_training_s": initial_s, "search_s": search_s,
        "initial_training_cpu_s": initial_cpu, "search_cpu_s": search_cpu,
        "load_average": list(os.getloadavg()),
        "iterations": len(result.trajectory) - 1, "retrainings": result.retrainings,
        "initial_structure": trained.spec.structure(), "structure": result.sliced.structure(),
        "initial_params": trained.spec.count_params(), "params": result.sliced.count_params(),
        "a0": result.a0, "val_metric": result.metric, "target_s": TARGET_S,
    }


def format_grs_timing(r: dict) -> str:
    verdict = "met" if r["search_s"] <= r["target_s"] else "NOT met"
    return "\n".join([
        f"one full {r['method'].upper()} run of {r['model']}: {r['n_neurons']} neurons, "
        f"{r['n_frames']} frames ({r['train_frames']} training), {r['retrain_epochs']} "
        f"retraining epochs, {r['metric']} on the {r['split']} split",
        f"  initial training ({r['initial_epochs']} epochs)  {r['initial_training_s']:.2f} s wall "
        f"({r['initial_training_cpu_s']:.2f} s CPU)",
        f"  {r['method'].upper()} search                   {r['search_s']:.2f} s wall "
        f"({r['search_cpu_s']:.2f} s CPU; {r['iterations']} iterations, {r['retrainings']} "
        f"retrainings; target <= {r['target_s']:.0f} s wall: {verdict})",
        f"  structure {r['initial_structure']} -> {r['structure']}, params "
        f"{r['initial_params']:,} -> {r['params']:,} "
        f"({100.0 * r['params'] / r['initial_params']:.1f}%), val {r['a0']:.4f} -> "
        f"{r['val_metric']:.4f}; load average {r['load_average'][0]:.2f} at the end "
        f"(the machine's other work slows the wall time)",
    ])
