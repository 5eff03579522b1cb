"""Score unit removals WITHOUT retraining: the D_V metric of many masked candidates at once.

JGRS (algorithms.md §8) picks each removal of a jump by the validation metric of the
accepted model with that one more unit off, weights unchanged. Removing unit u of prunable
layer l computes the same function as zeroing u in layer l's output (`zero_masked` zeroes
its kernel column, bias and the next layer's rows for it), so all candidates of layer l
share the forward pass up to layer l: it runs once, then the candidates are stacked on the
batch axis ([K·B, ...], in chunks that bound the memory) through the layers above l. The
metric comes from each candidate's confusion matrix through `metrics_from_confusion`, the
function `decision_metric` uses, so a score equals `decision_metric` of that candidate's
`zero_masked` model.

The matrix products are small: BLAS runs them on one thread (threadpoolctl), measured
3.5-4.5x faster than the default pool on the shared 2-core machine (nn1 at 1,000 neurons,
152 candidates: 55 vs 250 ms per scoring). The BLAS libraries are looked up once per
process (`_blas`): `threadpool_limits` looks them up on every call, 1.7 ms each, 7 % of a
whole JGRS run of nn1 at 273 neurons (71 scorings, cProfile).

A stateful (temporal) spec is scored as `decision_metric` scores it: x is its core inputs
over the session up to the last D_V frame (time order), the leading stateful layers are
not rerun, a trailing ForwardFilter runs over each candidate's sequence
(`neurogrs.temporal.filter_streams`), and the metric reads the D_V frames.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

from neurogrs.errors import SessionError
from neurogrs.evaluate import metrics_from_confusion
from neurogrs.pruning.data import PruneData
from neurogrs.pruning.surgery import Masks
from neurogrs.layers import is_stateful
from neurogrs.layers_temporal import ForwardFilter
from neurogrs.spec import ModelSpec
from neurogrs.temporal import filter_streams, stateful_ends

__all__ = ["RemovalScorer"]

_CHUNK_FLOATS = 4_000_000  # activations held per chunk of stacked candidates (16 MB)


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's thread pools (BLAS, OpenMP), inspected once."""
    return ThreadpoolController()


class RemovalScorer:
    """D_V metric of `spec` (masked by `masks`) with one more unit removed, per candidate."""

    def __init__(self, data: PruneData, metric: str, preprocessed_val: np.ndarray,
                 scored: np.ndarray | None = None) -> None:
        self.data = data
        self.metric = metric
        self.x = preprocessed_val  # D_V through the model's preprocessing (computed once)
        self.scored = scored  # rows of x that are D_V (stateful specs), None: every row
        self.y = np.asarray(data.y_val, dtype=np.int64)
        self.forwards = 0  # candidate forward passes so far (for measurements)

    @classmethod
    def for_spec(cls, spec: ModelSpec, data: PruneData, metric: str) -> "RemovalScorer":
        if spec.stateful:
            if data.features is None:
                raise SessionError("this PruneData was prepared for a frame-wise model; "
                                   "prepare it with the stateful spec to score one")
            end = int(data.val_index.max()) + 1
            return cls(data, metric, data.features[:end], data.val_index)
        return cls(data, metric, spec.preprocessing.apply(data.val_frames))

    # ------------------------------------------------------------ forward passes
    @staticmethod
    def _run(spec: ModelSpec, masks: Masks, x: np.ndarray, start: int, stop: int,
             streams: int = 1) -> np.ndarray:
        """Layers [start, stop) on x, each prunable layer's output multiplied by its mask.

        x holds `streams` sequences stacked on the batch axis; leading stateful layers are
        skipped (x is already past them), trailing ones run over each sequence.
        """
        lead = stateful_ends(spec)[0]
        for i in range(max(start, lead), stop):
            layer = spec.layers[i]
            if is_stateful(layer):
                seq = x.reshape(streams, x.shape[0] // streams, *x.shape[1:])
                if isinstance(layer, ForwardFilter):
                    seq = filter_streams(layer, seq)
                else:
                    seq = np.stack([layer.apply(one) for one in seq])
                x = seq.reshape(-1, *seq.shape[2:])
            else:
                x = layer.apply(x)
            if i in masks:
                x = x * masks[i]
        return x

    def metric_of(self, spec: ModelSpec, masks: Masks) -> float:
        """The D_V metric of the masked model (no removal)."""
        out = self._run(spec, masks, self.x, 0, len(spec.layers))
        return self._metrics(out.argmax(axis=-1)[None])[0]

    def score(self, spec: ModelSpec, masks: Masks,
              candidates: Sequence[tuple[int, int]]) -> np.ndarray:
        """One metric per (layer, unit) candidate, in the order given."""
        with _blas().limit(limits=1, user_api="blas"):
            return self._score(spec, masks, candidates)

    def _score(self, spec: ModelSpec, masks: Masks,
               candidates: Sequence[tuple[int, int]]) -> np.ndarray:
        scores = np.empty(len(candidates), dtype=np.float64)
        by_layer: dict[int, list[int]] = {}
        for pos, (layer, _) in enumerate(candidates):
            by_layer.setdefault(layer, []).append(pos)
        n_layers = len(spec.layers)
        for layer, positions in sorted(by_layer.items()):
            h = self._run(spec, masks, self.x, 0, layer + 1)  # [B, ..., W], shared
            per = h.size
            chunk = max(1, _CHUNK_FLOATS // max(per, 1))
            for c0 in range(0, len(positions), chunk):
                pos = positions[c0:c0 + chunk]
                stacked = np.repeat(h[None], len(pos), axis=0)  # [K, B, ..., W]
                for k, p in enumerate(pos):
                    stacked[k, ..., candidates[p][1]] = 0.0
                flat = stacked.reshape((len(pos) * h.shape[0],) + h.shape[1:])
                out = self._run(spec, masks, flat, layer + 1, n_layers, len(pos))
                pred = out.argmax(axis=-1).reshape(len(pos), h.shape[0])
                scores[pos] = self._metrics(pred)
                self.forwards += len(pos)
        return scores

    def _metrics(self, pred: np.ndarray) -> np.ndarray:
        """[K, B] predictions -> K metrics (each from its confusion matrix)."""
        if self.scored is not None:
            pred = pred[:, self.scored]
        k = max(int(self.data.n_classes), int(self.y.max(initial=0)) + 1,
                int(pred.max(initial=0)) + 1)
        n_cand = pred.shape[0]
        flat = (np.arange(n_cand)[:, None] * k * k + self.y[None] * k + pred).ravel()
        conf = np.bincount(flat, minlength=n_cand * k * k).reshape(n_cand, k, k)
        # the two decision metrics vectorised over candidates, as `metrics_from_confusion`
        # computes them (the true-class support is the same for every candidate): 1.6 of
        # 8.6 s of scoring in a JGRS run at 1,000 neurons went to one call per candidate
        if self.metric == "accuracy":
            return np.trace(conf, axis1=1, axis2=2) / float(self.y.size)
        if self.metric == "balanced_accuracy":
            support = conf[0].sum(axis=1)
            present = np.flatnonzero(support)
            return np.mean(conf[:, present, present] / support[present], axis=1)
        return np.array([metrics_from_confusion(c)[self.metric] for c in conf])
