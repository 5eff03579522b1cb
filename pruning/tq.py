"""Stage T (threshold) and Stage Q (quantise): unstructured pruning, no retraining (§4).

Stage T: θ starts at `theta` and grows by `theta_step` per sweep; a cut zeroes the kernel
and bias entries with |w| < θ of the CURRENT weights (the output layer included) and is
kept while the D_V metric stays >= τ_T · (the input model's metric), otherwise reverted.
Zeros stay zero (a cut is only ever reverted to the state before it). Three readings of
"stop" (`PruneSettings.stage_t`; docs/pruning.md "Stage T readings" has the measurements):

- `layerwise` (default): each sweep cuts layer by layer; the first failing layer ends
  Stage T. algorithms.md §4, and what the authors' code does (their t.py), i.e. what
  produced the paper's tables.
- `global`: each sweep cuts every layer at once and checks once; the first failing sweep
  ends Stage T (the paper's prose for Algorithm 2: "all weights whose magnitudes fall
  below a threshold Thresh are temporarily removed").
- `per_layer` (our reconstruction): layer by layer; a failing layer keeps its last θ and
  leaves, the other layers keep growing theirs until each has failed once or is all zero.

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
    stage_t: str = "layerwise"  # the Stage T reading that ran (PruneSettings.stage_t)
    layer_theta: dict[int, float | None] = field(default_factory=dict)  # last θ each layer held

    def to_dict(self) -> dict:
        return {
            "metric_in": self.metric_in, "metric_t": self.metric_t, "metric_q": self.metric_q,
            "stage_t": self.stage_t, "theta": self.theta,
            "layer_theta": {str(k): v for k, v in self.layer_theta.items()},
            "decimals": self.decimals,
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


def _cut_layer(layer, theta: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The layer's (kernel, bias) with |w| < θ zeroed, or None when nothing new is below θ."""
    kernel, bias = _cut(layer.kernel, theta), _cut(layer.bias, theta)
    if (np.count_nonzero(kernel) == np.count_nonzero(layer.kernel)
            and np.count_nonzero(bias) == np.count_nonzero(layer.bias)):
        return None
    return kernel, bias


class _StageT:
    """The state every Stage T reading shares: the current model, its metric, the floor."""

    def __init__(self, spec: ModelSpec, data: PruneData, settings: PruneSettings) -> None:
        self.data, self.settings = data, settings
        self.ref = decision_metric(spec, data, settings.metric)
        self.floor = settings.tau_t * self.ref
        self.current, self.metric = spec, self.ref
        self.trajectory: list[dict] = []
        self.layer_theta: dict[int, float | None] = {i: None for i, _ in spec.weighted_layers()}

    def theta(self, sweep: int) -> float:
        return self.settings.theta + sweep * self.settings.theta_step  # no accumulated rounding

    def attempt(self, cuts: dict[int, tuple[np.ndarray, np.ndarray]], theta: float) -> bool:
        """Apply `cuts` (layer -> kernel, bias), keep them if the D_V metric holds."""
        trial = self.current
        for i, (kernel, bias) in cuts.items():
            trial = _with_layer(trial, i, kernel, bias)
        m = decision_metric(trial, self.data, self.settings.metric)
        ok = m >= self.floor
        layers = sorted(cuts)
        self.trajectory.append({"stage": "T", "theta": round(theta, 10),
                                "layer": layers[0] if len(layers) == 1 else None,
                                "layers": layers, "metric": m, "kept": ok,
                                "nonzero_params": trial.nonzero_params()})
        if ok:
            self.current, self.metric = trial, m
            for i in layers:
                self.layer_theta[i] = round(theta, 10)
        return ok

    def passed(self, i: int, theta: float) -> None:
        """Layer i had nothing new below θ: it holds at θ without a check."""
        self.layer_theta[i] = round(theta, 10)


def _layerwise(st: _StageT) -> float | None:
    """Layer by layer at one θ per sweep; the first failing layer ends Stage T."""
    sweep, last_ok = 0, None
    while st.theta(sweep) <= _max_abs(st.current):
        theta = st.theta(sweep)
        for i, layer in st.current.weighted_layers():
            cut = _cut_layer(layer, theta)
            if cut is None:
                st.passed(i, theta)
            elif not st.attempt({i: cut}, theta):
                return last_ok
        last_ok = round(theta, 10)
        sweep += 1
    return last_ok


def _global(st: _StageT) -> float | None:
    """Every layer at once at one θ per sweep; the first failing sweep ends Stage T."""
    sweep, last_ok = 0, None
    while st.theta(sweep) <= _max_abs(st.current):
        theta = st.theta(sweep)
        cuts = {}
        for i, layer in st.current.weighted_layers():
            cut = _cut_layer(layer, theta)
            if cut is None:
                st.passed(i, theta)
            else:
                cuts[i] = cut
        if cuts and not st.attempt(cuts, theta):
            return last_ok
        last_ok = round(theta, 10)
        sweep += 1
    return last_ok


def _per_layer(st: _StageT) -> float | None:
    """Layer by layer; a failing layer keeps its last θ and leaves, the others go on.

    Stage T ends when every layer has failed once or has no non-zero weight left. Returns
    the largest θ every layer was cut at (None if a layer failed at the first θ).
    """
    active = [i for i, _ in st.current.weighted_layers()]
    sweep = 0
    while active:
        theta = st.theta(sweep)
        for i in list(active):
            layer = st.current.layers[i]
            cut = _cut_layer(layer, theta)
            if cut is None:
                st.passed(i, theta)
            elif not st.attempt({i: cut}, theta):
                active.remove(i)  # this layer keeps its θ; the other layers continue
                continue
            layer = st.current.layers[i]
            if not (np.count_nonzero(layer.kernel) or np.count_nonzero(layer.bias)):
                active.remove(i)  # nothing left to cut
        sweep += 1
    thetas = list(st.layer_theta.values())
    return None if any(t is None for t in thetas) else min(thetas)


_READINGS = {"layerwise": _layerwise, "global": _global, "per_layer": _per_layer}


def stage_t(spec: ModelSpec, data: PruneData, settings: PruneSettings,
            rng: np.random.Generator | None = None) -> TQResult:
    """Stage T alone, in the reading `settings.stage_t` (`rng` unused: deterministic)."""
    t0 = time.perf_counter()
    st = _StageT(spec, data, settings)
    theta, partial = None, False
    try:
        theta = _READINGS[settings.stage_t](st)
    except KeyboardInterrupt:
        partial = True
    return TQResult(st.current, st.ref, st.metric, st.metric, theta, None, {}, st.trajectory,
                    time.perf_counter() - t0, partial, stage_t=settings.stage_t,
                    layer_theta=dict(st.layer_theta))


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
                    t_result.seconds + time.perf_counter() - t0, partial,
                    stage_t=t_result.stage_t, layer_theta=dict(t_result.layer_theta))


def tq(spec: ModelSpec, data: PruneData, settings: PruneSettings,
       rng: np.random.Generator | None = None) -> TQResult:
    """Stage T then Stage Q; the result is named `<spec.name>-tq`."""
    result = stage_q(stage_t(spec, data, settings, rng), data, settings, rng)
    s = result.spec
    result.spec = ModelSpec(s.preprocessing, s.layers, s.label_names, f"{spec.name}-tq",
                            metrics={}, provenance=dict(spec.provenance))
    return result
