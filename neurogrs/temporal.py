"""How training, pruning and evaluation treat time for stateful (temporal-context) specs.

A temporal zoo model is a frame-wise core network between stateful layers:

    [LeakyTraces]  ->  core (Dense / Conv2D / ... ending in softmax)  ->  [ForwardFilter]
    leading part       trained by gradient, pruned by GRS/JGRS/TQ        trailing part

Neither stateful layer is trained by gradient. The leading layers are fixed feature maps:
their output over a session is computed once, causally, in time order from a fresh state
(`core_inputs`), and the core trains on those features at the frames of its training
part. The trailing ForwardFilter is fitted from the training part's labels
(`fit_filter`: transitions counted only between consecutive frames that are both in the
training part). Scoring a stateful spec runs the whole session in time order from a fresh
state and keeps the scored frames (`run_from_features`, `session_probabilities`): every
output depends on past and present frames only, as in the service.

numpy only (no TensorFlow): the root package, pruning and the benchmarks share it.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurogrs.errors import ModelError
from neurogrs.layers import is_stateful
from neurogrs.layers_temporal import ForwardFilter
from neurogrs.spec import ModelSpec, forward

__all__ = ["stateful_ends", "core_input_shape", "core_inputs", "run_from_features",
           "session_probabilities", "fit_filter", "with_filter", "filter_streams"]


def stateful_ends(spec: ModelSpec) -> tuple[int, int]:
    """(number of leading stateful layers, index where the trailing stateful layers start).

    Layers [lead, tail) are the core; a stateful layer inside the core is refused (nothing
    could train through it).
    """
    layers = spec.layers
    lead = 0
    while lead < len(layers) and is_stateful(layers[lead]):
        lead += 1
    tail = len(layers)
    while tail > lead and is_stateful(layers[tail - 1]):
        tail -= 1
    inner = [i for i in range(lead, tail) if is_stateful(layers[i])]
    if inner:
        raise ModelError(f"layer {inner[0]} ({type(layers[inner[0]]).__name__}) is stateful "
                         "but sits between weighted layers: stateful layers may only come "
                         "before the first or after the last trained layer")
    return lead, tail


def core_input_shape(spec: ModelSpec) -> tuple[int, ...]:
    """Shape of one sample entering the core (after the leading stateful layers)."""
    return tuple(spec.shapes()[stateful_ends(spec)[0]])


def core_inputs(spec: ModelSpec, frames: np.ndarray) -> np.ndarray:
    """Raw frames [T, N] in time order -> core inputs [T, *core_input_shape].

    Preprocessing, then the leading stateful layers run over the sequence from a fresh
    state (causal: row t depends on frames 0..t only). Index the result afterwards: the
    features of a frame need every frame before it.
    """
    lead, _ = stateful_ends(spec)
    x = spec.preprocessing.apply(frames)
    for layer in spec.layers[:lead]:
        x = layer.apply(x)
    return np.ascontiguousarray(x, dtype=np.float32)


def run_from_features(spec: ModelSpec, features: np.ndarray) -> np.ndarray:
    """Class probabilities [T, C] from core inputs [T, ...] (a sequence in time order).

    The core runs batched; the trailing stateful layers run over the sequence from a fresh
    state. Equals `forward(spec, frames)` when `features = core_inputs(spec, frames)`.
    """
    lead, _ = stateful_ends(spec)
    x = features
    for layer in spec.layers[lead:]:
        x = layer.apply(x)
    return np.ascontiguousarray(x, dtype=np.float32)


def session_probabilities(spec: ModelSpec, frames: np.ndarray,
                          index: np.ndarray | None = None) -> np.ndarray:
    """Probabilities of the frames `index` (all when None) of a recording [T, N].

    A stateful spec runs the recording in time order from a fresh state up to the last
    scored frame; a frame-wise spec runs the scored frames only (the same result).
    """
    if index is None:
        return forward(spec, frames)
    idx = np.asarray(index)
    if not spec.stateful:
        return forward(spec, frames[idx])
    if idx.size == 0:
        return np.empty((0, spec.n_outputs), np.float32)
    return forward(spec, frames[: int(idx.max()) + 1])[idx]


def fit_filter(labels: np.ndarray, train_index: np.ndarray, n_classes: int,
               prior_labels: np.ndarray) -> ForwardFilter:
    """A ForwardFilter fitted on the training part of one recording.

    T[c', c]: transitions c' -> c between frames t and t+1 that are both in `train_index`
    (a split's training part, possibly several blocks: a pair across a gap is no
    transition), add-one smoothed. prior: the class frequencies of `prior_labels`, add-one
    smoothed: the labels the core network was trained on (its balanced part D_T), so that
    p / prior is the core's likelihood ratio and the filter supplies the time prior.
    """
    y = np.asarray(labels)
    idx = np.sort(np.asarray(train_index, dtype=np.int64))
    prior_labels = np.asarray(prior_labels)
    if idx.size < 2:
        raise ModelError("fitting a forward filter needs a training part of at least 2 frames")
    if idx[0] < 0 or idx[-1] >= y.size:
        raise ModelError(f"training index must lie in [0, {y.size}) (the labels' frames), got "
                         f"{idx[0]}..{idx[-1]}")
    for name, lab in (("labels", y[idx]), ("prior_labels", prior_labels)):
        if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
            raise ModelError(f"{name} must lie in [0, {n_classes}), got {lab.min()}..{lab.max()}")
    consecutive = np.flatnonzero(np.diff(idx) == 1)
    counts = np.ones((n_classes, n_classes), np.float64)
    np.add.at(counts, (y[idx[consecutive]], y[idx[consecutive] + 1]), 1.0)
    trans = counts / counts.sum(axis=1, keepdims=True)
    freq = np.bincount(prior_labels, minlength=n_classes) + 1.0
    return ForwardFilter(trans.astype(np.float32), (freq / freq.sum()).astype(np.float32))


def with_filter(spec: ModelSpec, filt: ForwardFilter) -> ModelSpec:
    """`spec` with its (single) ForwardFilter layer replaced by `filt`."""
    where = [i for i, layer in enumerate(spec.layers) if isinstance(layer, ForwardFilter)]
    if len(where) != 1:
        raise ModelError(f"expected one ForwardFilter layer, found {len(where)}")
    layers = list(spec.layers)
    layers[where[0]] = filt
    return dataclasses.replace(spec, layers=tuple(layers))


def filter_streams(filt: ForwardFilter, p: np.ndarray) -> np.ndarray:
    """`filt` run over K independent streams at once: p [K, T, C] -> [K, T, C].

    Each stream from a fresh state, in float32 exactly as `ForwardFilter.step` computes
    it (pruning's candidate scoring runs many candidates' outputs through it).
    """
    p = np.asarray(p, dtype=np.float32)
    out = np.empty_like(p)
    b = p[:, 0].copy()
    out[:, 0] = b
    tiny = np.float32(1e-30)
    for t in range(1, p.shape[1]):
        u = p[:, t] * (b @ filt.transition) / filt.prior
        total = u.sum(axis=1, dtype=np.float32)[:, None]
        ok = total > tiny
        b = np.where(ok, u / np.where(ok, total, np.float32(1)), p[:, t]).astype(np.float32)
        out[:, t] = b
    return out
