"""Stateful layers: the temporal context of a causal decoder.

A frame-wise decoder sees one frame; these two layers let it see the past without ever
seeing the future. Each carries a small state from frame to frame, and each is defined
here once, by its numpy reference (`step`), which every engine (numba, generated C) must
reproduce (docs/temporal.md):

* `LeakyTraces` (input side) appends, for each element e of its input and each decay
  a_j, an exponentially decaying trace s[e, j] <- a_j * s[e, j] + (1 - a_j) * x[e]. On the
  first frame after a reset the traces start at the frame itself (s = x), so a fresh
  session has no warm-up transient. Output, channels-last: y[e*(1+m)] = x[e] and
  y[e*(1+m) + 1 + j] = s[e, j] (after the update). A flat input [n] becomes [n*(1+m)];
  an image [H, W, C] becomes [H, W, C*(1+m)].
* `ForwardFilter` (output side, after the softmax) is a two-or-more-state forward filter
  on the class probabilities p: q = T^T b (T[c', c] = P(next class c | class c')),
  u_c = p_c * q_c / prior_c, b = u / sum(u). On the first frame b = p. T and the prior
  are fitted from the training labels (`fit_forward_filter`).

State layout (one float32 vector per stateful layer; engines share it): element 0 is the
primed flag (0.0 after a reset, 1.0 once a frame has been seen), then the values —
LeakyTraces: s[e, j] at 1 + e*m + j; ForwardFilter: b[c] at 1 + c.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from neurogrs.errors import ModelError
from neurogrs.layers import ArrayLookup, Shape, float32_array

__all__ = ["LeakyTraces", "ForwardFilter", "STATEFUL_TYPES", "decays_from_taus",
           "fit_forward_filter"]


def decays_from_taus(taus_frames) -> np.ndarray:
    """Decays a = exp(-1/tau) for time constants given in frames (tau > 0)."""
    t = np.asarray(list(taus_frames), dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ModelError(f"trace time constants must be positive frame counts, got {taus_frames}")
    return np.exp(-1.0 / t).astype(np.float32)


class _Stateful:
    """What both stateful layers share: no trainable parameters counted by pruning's
    weighted-layer walk, and a state vector with the primed flag first."""

    stateful: ClassVar[bool] = True

    def new_state(self, in_shape: Shape) -> np.ndarray:
        return np.zeros(1 + self.state_values(in_shape), np.float32)

    def state_values(self, in_shape: Shape) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, x: np.ndarray) -> np.ndarray:
        """A batch is a sequence in time, run from a fresh state."""
        state = self.new_state(tuple(x.shape[1:]))
        return self.apply_sequence(x, state)

    def apply_sequence(self, x: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Frames [B, ...] in time order; `state` is updated in place."""
        out = [self.step(x[t].reshape(-1), state) for t in range(x.shape[0])]
        shape = self.out_shape(tuple(x.shape[1:]), "sequence")
        if not out:
            return np.empty((0, *shape), np.float32)
        return np.stack(out).reshape(x.shape[0], *shape).astype(np.float32)


@dataclass(frozen=True, eq=False)
class LeakyTraces(_Stateful):
    decays: np.ndarray  # [m] float32, each in (0, 1)
    kind: ClassVar[str] = "leaky_traces"
    params: ClassVar[int] = 0

    def __post_init__(self) -> None:
        d = float32_array("LeakyTraces decays", self.decays, 1)
        if d.size == 0 or np.any(d <= 0) or np.any(d >= 1):
            raise ModelError(f"LeakyTraces decays must lie in (0, 1), got {d.tolist()}")
        object.__setattr__(self, "decays", d)

    @property
    def m(self) -> int:
        return int(self.decays.shape[0])

    def to_json(self, i: int) -> dict:
        return {"type": self.kind, "traces": self.m, "decays": f"layer{i}.decays"}

    @classmethod
    def from_json(cls, d: dict, arr: ArrayLookup) -> "LeakyTraces":
        return cls(arr("decays"))

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        return {f"layer{i}.decays": self.decays}

    def out_shape(self, shape: Shape, where: str) -> Shape:
        if len(shape) not in (1, 3):
            raise ModelError(f"{where} needs a flat or [H, W, C] input, got shape {shape}")
        return (*shape[:-1], shape[-1] * (1 + self.m))

    def flops(self, in_shape: Shape, out_shape: Shape) -> int:
        return 3 * self.m * int(np.prod(in_shape))

    def state_values(self, in_shape: Shape) -> int:
        return self.m * int(np.prod(in_shape))

    def step(self, x: np.ndarray, state: np.ndarray) -> np.ndarray:
        """One frame (flat [L]) -> flat [L*(1+m)]; `state` updated in place."""
        L, m = x.shape[0], self.m
        s = state[1:].reshape(L, m)
        if state[0] == 0.0:
            s[:] = x[:, None]
            state[0] = 1.0
        else:
            a = self.decays
            s[:] = a * s + (np.float32(1) - a) * x[:, None]
        y = np.empty((L, 1 + m), np.float32)
        y[:, 0] = x
        y[:, 1:] = s
        return y.reshape(-1)


@dataclass(frozen=True, eq=False)
class ForwardFilter(_Stateful):
    transition: np.ndarray  # [K, K] float32, row c' = P(next | c'), rows sum to 1
    prior: np.ndarray  # [K] float32 class frequencies, positive
    kind: ClassVar[str] = "forward_filter"

    def __post_init__(self) -> None:
        t = float32_array("ForwardFilter transition", self.transition, 2)
        p = float32_array("ForwardFilter prior", self.prior, 1)
        k = p.shape[0]
        if t.shape != (k, k) or k < 2:
            raise ModelError(f"ForwardFilter transition must be [{k}, {k}] for {k} classes "
                             f"(at least 2), got {t.shape}")
        if np.any(t <= 0) or np.any(np.abs(t.sum(axis=1) - 1) > 1e-3):
            raise ModelError("ForwardFilter transition rows must be positive and sum to 1")
        if np.any(p <= 0) or abs(float(p.sum()) - 1) > 1e-3:
            raise ModelError("ForwardFilter prior must be positive and sum to 1")
        object.__setattr__(self, "transition", t)
        object.__setattr__(self, "prior", p)

    @property
    def params(self) -> int:
        return int(self.transition.size + self.prior.size)

    def to_json(self, i: int) -> dict:
        return {"type": self.kind, "classes": int(self.prior.shape[0]),
                "transition": f"layer{i}.transition", "prior": f"layer{i}.prior"}

    @classmethod
    def from_json(cls, d: dict, arr: ArrayLookup) -> "ForwardFilter":
        return cls(arr("transition"), arr("prior"))

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        return {f"layer{i}.transition": self.transition, f"layer{i}.prior": self.prior}

    def out_shape(self, shape: Shape, where: str) -> Shape:
        k = self.prior.shape[0]
        if shape != (k,):
            raise ModelError(f"{where} filters {k} class probabilities, gets shape {shape}")
        return shape

    def flops(self, in_shape: Shape, out_shape: Shape) -> int:
        k = self.prior.shape[0]
        return 2 * k * k + 4 * k

    def state_values(self, in_shape: Shape) -> int:
        return int(self.prior.shape[0])

    def step(self, p: np.ndarray, state: np.ndarray) -> np.ndarray:
        b = state[1:]
        if state[0] != 0.0:
            u = p * (b @ self.transition) / self.prior
            total = np.float32(u.sum())
            if total > np.float32(1e-30):
                b[:] = u / total
                return b.copy()
        b[:] = p
        state[0] = 1.0
        return b.copy()


def fit_forward_filter(labels: np.ndarray, n_classes: int) -> ForwardFilter:
    """T from the label transitions of a training sequence (add-one smoothing), prior from
    the label frequencies (add-one smoothing). `labels` must be in time order."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size < 2:
        raise ModelError("fitting a forward filter needs a label sequence of at least 2 frames")
    if y.min() < 0 or y.max() >= n_classes:
        raise ModelError(f"labels must lie in [0, {n_classes}), got {y.min()}..{y.max()}")
    counts = np.ones((n_classes, n_classes), np.float64)
    np.add.at(counts, (y[:-1], y[1:]), 1.0)
    trans = counts / counts.sum(axis=1, keepdims=True)
    freq = np.bincount(y, minlength=n_classes).astype(np.float64) + 1.0
    return ForwardFilter(trans.astype(np.float32), (freq / freq.sum()).astype(np.float32))


STATEFUL_TYPES: dict[str, type] = {cls.kind: cls for cls in (LeakyTraces, ForwardFilter)}
