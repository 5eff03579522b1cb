"""Stage T (threshold) and Stage Q (quantise): unstructured pruning, no retraining (§4).

Stage T: θ starts at `theta`; each sweep walks the weighted layers in order (the output
layer included), zeroes the kernel and bias entries with |w| < θ in one layer, and keeps
that layer's change while the D_V metric stays >= τ_T · (the input model's metric);
the first failure reverts that layer and ends Stage T. θ grows by `theta_step` per sweep.
Zeros stay zero (a cut is only ever reverted to the state before it).

Stage Q: from `decimals` places down to 0, round each layer (kernel and bias) to d
decimals in turn, keeping it while the metric stays >= τ_Q · (Stage T's metric); the
first failure reverts that layer and ends Stage Q. Rounding keeps zeros zero.

The result is a dense model with exact zeros (codegen's sparse path handles them).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from neurogrs.pruning.data import PruneData, decision_metric
from neurogrs.pruning.settings import PruneSettings
from neurogrs.spec import ModelSpec

__all__ = ["TQResult", "stage_t", "stage_q", "tq", "distinct_values"]


@dataclass
class TQResult:
    spec: ModelSpec
    metric_in: float  # D_V metric of the input (pruned) model
    metric_t: float  # after Stage T
    metric_q: float  # after Stage Q (= final)
    theta: float | None  # last threshold whose sweep completed without failure (None: none)
    decimals: int | None  # last d every layer was rounded to (None: not even `decimals`)
    layer_decimals: dict[int, int | None] = field(default_factory=dict)
    trajectory: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    partial: bool = False

    def to_dict(self) -> dict:
        return {
            "metric_in": self.metric_in, "metric_t": self.metric_t, "metric_q": self.metric_q,
            "theta": self.theta, "decimals": self.decimals,
            "layer_decimals": {str(k): v for k, v in self.layer_decimals.items()},
            "nonzero_params": self.spec.nonzero_params(),
            "distinct_values": distinct_values(self.spec),
            "effective_flops": self.spec.summary()["effective_flops"],
            "seconds": round(self.seconds, 3), "partial": self.partial,
            "trajectory": self.trajectory,
        }


def distinct_values(spec: ModelSpec) -> int:
    """Distinct weight values over every kernel and bias (zero included once)."""
    values = np.concatenate([np.concatenate([l.kernel.ravel(), l.bias.ravel()])
                             for _, l in spec.weighted_layers()])
    return int(np.unique(values).size)


def _with_layer(spec: ModelSpec, index: int, kernel: np.ndarray, bias: np.ndarray) -> ModelSpec:
    layers = list(spec.layers)
    layers[index] = replace(layers[index], kernel=kernel, bias=bias)
    return ModelSpec(spec.preprocessing, tuple(layers), spec.label_names, spec.name,
                     metrics={}, provenance=dict(spec.provenance))


def _cut(a: np.ndarray, theta: float) -> np.ndarray:
    return np.where(np.abs(a) < theta, np.float32(0), a).astype(np.float32)


def _max_abs(spec: ModelSpec) -> float:
    return max(float(max(np.abs(l.kernel).max(initial=0), np.abs(l.bias).max(initial=0)))
               for _, l in spec.weighted_layers())


def stage_t(spec: ModelSpec, data: PruneData, settings: PruneSettings,
            rng: np.random.Generator | None = None) -> TQResult:
    """Stage T alone (`rng` unused: Stage T is deterministic)."""
    t0 = time.perf_counter()
    ref = decision_metric(spec, data, settings.metric)
    floor = settings.tau_t * ref
    current, metric = spec, ref
    sweep, last_ok = 0, None
    theta = settings.theta
    trajectory: list[dict] = []
    partial = False
    try:
        failed = False
        while not failed and theta <= _max_abs(current):
            for i, layer in current.weighted_layers():
                kernel, bias = _cut(layer.kernel, theta), _cut(layer.bias, theta)
                if (np.count_nonzero(kernel) == np.count_nonzero(layer.kernel)
                        and np.count_nonzero(bias) == np.count_nonzero(layer.bias)):
                    continue  # nothing new below θ in this layer: the model is unchanged
                trial = _with_layer(current, i, kernel, bias)
                m = decision_metric(trial, data, settings.metric)
                ok = m >= floor
                trajectory.append({"stage": "T", "theta": round(theta, 10), "layer": i,
                                   "metric": m, "kept": ok,
                                   "nonzero_params": trial.nonzero_params()})
                if not ok:
                    failed = True
                    break
                current, metric = trial, m
            if not failed:
                last_ok = round(theta, 10)
            sweep += 1
            theta = settings.theta + sweep * settings.theta_step  # no accumulated rounding
    except KeyboardInterrupt:
        partial = True
    return TQResult(current, ref, metric, metric, last_ok, None, {}, trajectory,
                    time.perf_counter() - t0, partial)


def stage_q(t_result: TQResult, data: PruneData, settings: PruneSettings,
            rng: np.random.Generator | None = None) -> TQResult:
    """Stage Q on Stage T's model (`rng` unused: Stage Q is deterministic)."""
    t0 = time.perf_counter()
    floor = settings.tau_q * t_result.metric_t
    current, metric = t_result.spec, t_result.metric_t
    layer_decimals: dict[int, int | None] = {i: None for i, _ in current.weighted_layers()}
    done = None
    trajectory = list(t_result.trajectory)
    partial = t_result.partial
    try:
        for d in range(settings.decimals, -1, -1):
            if partial:
                break
            failed = False
            for i, layer in current.weighted_layers():
                trial = _with_layer(current, i, np.round(layer.kernel, d), np.round(layer.bias, d))
                m = decision_metric(trial, data, settings.metric)
                ok = m >= floor
                trajectory.append({"stage": "Q", "decimals": d, "layer": i, "metric": m,
                                   "kept": ok, "distinct_values": distinct_values(trial)})
                if not ok:
                    failed = True
                    break
                current, metric, layer_decimals[i] = trial, m, d
            if failed:
                break
            done = d
    except KeyboardInterrupt:
        partial = True
    return TQResult(current, t_result.metric_in, t_result.metric_t, metric, t_result.theta, done,
                    layer_decimals, trajectory,
                    t_result.seconds + time.perf_counter() - t0, partial)


def tq(spec: ModelSpec, data: PruneData, settings: PruneSettings,
       rng: np.random.Generator | None = None) -> TQResult:
    """Stage T then Stage Q; the result is named `<spec.name>-tq`."""
    result = stage_q(stage_t(spec, data, settings, rng), data, settings, rng)
    s = result.spec
    result.spec = ModelSpec(s.preprocessing, s.layers, s.label_names, f"{spec.name}-tq",
                            metrics={}, provenance=dict(spec.provenance))
    return result
