"""Retraining for pruning: the naive Keras way versus the masked trainer (`bench pruning`).

The naive reference retrains each pruning candidate the obvious way: build the physically
smaller Keras model, compile it with a fresh Adam, `model.fit` it on shuffled tf.data, in
two settings: Keras' defaults (one graph call per batch) and one graph call per epoch
(`steps_per_execution`, how neurogrs trained before `pruning.fit`). The fast way keeps the
full-width model and trains every candidate of a GRS iteration at once with
`neurogrs.pruning.fit.fit_many` (masks, one XLA call).

`run_retrain_bench` simulates a session, trains nn1, then for R rounds draws the candidates
of a GRS iteration (one random unit removed from each prunable layer) and retrains them all
three ways, reporting seconds per candidate and the validation accuracies, which should
agree. Keras may run fewer epochs (`naive_epochs`); its time is then build + first epoch
(which includes Keras' tracing) + the later epochs' mean times the remaining epochs.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np

from neurogrs.errors import ConfigError
from neurogrs.evaluate import evaluate_spec
from neurogrs.pruning.tf_quiet import import_tensorflow
from neurogrs.pruning.fit import FitSettings, fit, fit_many
from neurogrs.pruning.keras_adapter import from_keras, to_keras
from neurogrs.pruning.surgery import Masks, full_masks, prunable_layers, slice_masked
from neurogrs.simulate import simulate_session
from neurogrs.spec import Dropout, ModelSpec
from neurogrs.splits import SplitSettings, make_split
from neurogrs.zoo import init_spec

__all__ = ["naive_keras_fit", "grs_candidates", "run_retrain_bench", "format_table"]


def naive_keras_fit(spec: ModelSpec, x: np.ndarray, y: np.ndarray, settings: FitSettings, *,
                    seed: int, per_epoch_call: bool = False,
                    timings: dict | None = None) -> ModelSpec:
    """Retrain `spec` (its weights are the start) with a new Keras model, compile and fit.

    Keras' defaults run one graph call per batch; `per_epoch_call` runs a whole epoch per
    call (steps_per_execution, as neurogrs trained before `pruning.fit`). `timings`, when
    given, receives "build" (to_keras + compile) and "epochs" (seconds of each epoch; the
    first includes Keras' tracing of its train step).
    """
    tf = import_tensorflow()
    import keras

    t0 = time.perf_counter()
    layers = tuple(dataclasses.replace(l, rate=l.rate * settings.dropout_scale)
                   if isinstance(l, Dropout) else l for l in spec.layers)
    model = to_keras(dataclasses.replace(spec, layers=layers))
    steps = -(-len(y) // settings.batch_size)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=settings.learning_rate),
                  loss="sparse_categorical_crossentropy",
                  steps_per_execution=steps if per_epoch_call else 1)
    data = tf.data.Dataset.from_tensor_slices((x, y)).cache().shuffle(
        len(y), seed=seed, reshuffle_each_iteration=True).batch(settings.batch_size)
    ends: list[float] = []
    clock = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    t1 = time.perf_counter()
    model.fit(data, epochs=settings.epochs, verbose=0, shuffle=False, callbacks=[clock])
    if timings is not None:
        timings.update(build=t1 - t0, epochs=list(np.diff([t1] + ends)))
    return from_keras(model, spec.preprocessing, spec.label_names, name=spec.name)


def _scaled_seconds(timings: dict, epochs: int) -> float:
    """build + first epoch + the later epochs' mean times the remaining epochs."""
    first, rest = timings["epochs"][0], timings["epochs"][1:]
    return timings["build"] + first + (float(np.mean(rest)) if rest else first) * (epochs - 1)


def grs_candidates(spec: ModelSpec, masks: Masks, rng: np.random.Generator) -> list[Masks]:
    """One GRS iteration's candidates: one random active unit off in each layer above 2."""
    out = []
    for layer in prunable_layers(spec):
        active = np.flatnonzero(masks[layer])
        if active.size > 2:
            m = {k: v.copy() for k, v in masks.items()}
            m[layer][rng.choice(active)] = False
            out.append(m)
    return out


def run_retrain_bench(n_neurons: int = 273, n_frames: int = 3000, rounds: int = 3,
                      epochs: int = 50, naive_epochs: int = 10, initial_epochs: int = 150,
                      seed: int = 0, log: Callable[[str], None] = lambda msg: None) -> dict:
    """Seconds per retrained candidate, naive Keras vs fit_many, on a simulated session."""
    for name, v in (("rounds", rounds), ("epochs", epochs), ("naive_epochs", naive_epochs),
                    ("initial_epochs", initial_epochs)):
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
    session = simulate_session(n_neurons=n_neurons, n_frames=n_frames, seed=seed)
    split = make_split(session.labels, SplitSettings(), np.random.default_rng(seed))
    spec = init_spec("nn1", n_neurons, np.random.default_rng((seed, 1)))
    x = spec.preprocessing.apply(session.traces[split.balanced])
    y = session.labels[split.balanced].astype(np.int32)
    majority = int(np.bincount(session.labels[split.train]).argmax())

    def val(s: ModelSpec) -> float:
        return float(evaluate_spec(s, session, split.val, majority)["accuracy"])

    log(f"initial training: nn1, {initial_epochs} epochs on {len(y)} frames")
    t = time.perf_counter()
    spec = fit(spec, x, y, FitSettings(epochs=initial_epochs), seed=seed)
    initial_s = time.perf_counter() - t
    settings = FitSettings(epochs=epochs)
    naive_settings = dataclasses.replace(settings, epochs=naive_epochs)
    rng = np.random.default_rng((seed, 2))
    fast_s: list[float] = []
    fast_acc: list[float] = []
    naive = {"keras_default": ([], []), "keras_epoch_call": ([], [])}  # seconds, accuracies
    compile_s = 0.0
    for r in range(rounds + 1):  # round 0 compiles (and is reported as such)
        cands = grs_candidates(spec, full_masks(spec), rng)
        t = time.perf_counter()
        trained = fit_many(spec, cands, x, y, settings, seed=seed + r)
        dt = time.perf_counter() - t
        if r == 0:
            compile_s = dt
            continue
        fast_s.append(dt / len(cands))
        fast_acc += [val(c) for c in trained]
        for key, (secs, accs) in naive.items():
            for masks in cands:
                tm: dict = {}
                out = naive_keras_fit(slice_masked(spec, masks), x, y, naive_settings,
                                      seed=seed + r, per_epoch_call=key == "keras_epoch_call",
                                      timings=tm)
                secs.append(_scaled_seconds(tm, epochs))
                accs.append(val(out))
        log(f"round {r}/{rounds}: fit_many {fast_s[-1]:.3f} s/candidate; Keras "
            + ", ".join(f"{k} {np.mean(v[0][-len(cands):]):.2f} s" for k, v in naive.items()))
    fast = float(np.median(fast_s))
    out = {
        "n_neurons": n_neurons, "n_frames": n_frames, "train_frames": int(len(y)),
        "rounds": rounds, "candidates_per_round": len(cands), "epochs": epochs,
        "naive_epochs": naive_epochs, "initial_training_s": initial_s,
        "fast_first_call_s": compile_s, "fast_s_per_candidate": fast,
        "fast_val_accuracy": [float(np.mean(fast_acc)), float(np.std(fast_acc))],
    }
    for key, (secs, accs) in naive.items():
        out[f"{key}_s_per_candidate"] = float(np.median(secs))
        out[f"{key}_ratio"] = float(np.median(secs)) / fast
        out[f"{key}_val_accuracy"] = [float(np.mean(accs)), float(np.std(accs))]
    return out


def format_table(r: dict) -> str:
    note = ("" if r["naive_epochs"] == r["epochs"] else
            f"; Keras ran {r['naive_epochs']} epochs, its time = build + first epoch + "
            f"the later epochs' mean x {r['epochs'] - 1}")
    rows = [("Keras build+compile+fit (defaults)", "keras_default"),
            ("Keras, one call per epoch", "keras_epoch_call")]
    lines = [
        f"retraining nn1 candidates: {r['n_neurons']} neurons, {r['train_frames']} training "
        f"frames, {r['epochs']} epochs, batch 32, {r['rounds']} rounds x "
        f"{r['candidates_per_round']} candidates",
        f"{'method':<36}{'s / candidate':>14}{'vs fit_many':>13}{'val acc (mean +- sd)':>24}",
    ]
    for label, key in rows:
        acc = r[f"{key}_val_accuracy"]
        lines.append(f"{label:<36}{r[f'{key}_s_per_candidate']:>14.3f}{r[f'{key}_ratio']:>12.0f}x"
                     f"{acc[0]:>16.3f} +- {acc[1]:.3f}")
    acc = r["fast_val_accuracy"]
    lines += [
        f"{'fit_many (masked, one XLA call)':<36}{r['fast_s_per_candidate']:>14.3f}{'1':>12}x"
        f"{acc[0]:>16.3f} +- {acc[1]:.3f}",
        f"medians over rounds{note}",
        f"fit_many first call (trace + XLA compile + one round): {r['fast_first_call_s']:.2f} s; "
        f"initial training (150 epochs) {r['initial_training_s']:.2f} s",
    ]
    return "\n".join(lines)
