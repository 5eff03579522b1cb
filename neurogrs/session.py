"""One recorded (or simulated) imaging session: traces, a behaviour label per frame.

`Session` validates on creation and names the problem it finds: shapes, NaN/Inf, empty
axes, a single label class, positions that do not match the neurons, a non-positive rate.

A session that is only *scored* (`neurogrs evaluate`, `--eval-session`), never trained on,
may hold a single class or skip classes (a day the animal hardly moved): load it inside
`with scoring_only():` and the label-class checks are lifted for that block only.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurogrs.errors import SessionError

__all__ = ["Session", "scoring_only", "single_class_allowed"]

_SCORING_ONLY: ContextVar[bool] = ContextVar("neurogrs_scoring_only", default=False)


@contextmanager
def scoring_only():
    """Sessions created inside may hold one label class or skip classes (scored, never
    trained on: balanced accuracy is then the recall of the classes present)."""
    token = _SCORING_ONLY.set(True)
    try:
        yield
    finally:
        _SCORING_ONLY.reset(token)


def single_class_allowed() -> bool:
    """True inside `scoring_only()`."""
    return _SCORING_ONLY.get()


def _finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise SessionError(
            f"{name} contains {int(bad.sum())} NaN/Inf value(s); first at index {idx}"
        )


def _float_array(name: str, value: Any, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise SessionError(f"{name} is not an array: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ):
        raise SessionError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise SessionError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    _finite(name, arr)
    return arr


@dataclass(frozen=True, eq=False)
class Session:
    """A session of T frames of N neurons.

    traces:    float32 [T, N] activity (dF/F, deconvolved events, spike counts...)
    labels:    int64 [T], classes 0..C-1, at least two present
    fs:        frame rate in Hz (> 0)
    speed:     optional float32 [T]
    positions: optional float32 [N, 2] neuron centroids (x, y)
    meta:      JSON-serialisable provenance (source, units, label_names, ...)
    """

    traces: np.ndarray
    labels: np.ndarray
    fs: float = 10.0
    speed: np.ndarray | None = None
    positions: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        traces = _float_array("traces", self.traces, 2)
        T, N = traces.shape
        if T == 0:
            raise SessionError("traces has no frames (T = 0)")
        if N == 0:
            raise SessionError("traces has no neurons (N = 0)")

        labels = np.asarray(self.labels)
        if labels.ndim != 1:
            raise SessionError(f"labels must be 1-D [T], got shape {labels.shape}")
        if labels.shape[0] != T:
            raise SessionError(f"labels has {labels.shape[0]} frames but traces has {T}")
        if labels.dtype == object or not (
            np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_
        ):
            raise SessionError(f"labels must be integers, got dtype {labels.dtype}")
        if np.issubdtype(labels.dtype, np.floating):
            _finite("labels", labels)
            if not np.all(labels == np.round(labels)):
                raise SessionError("labels must be whole numbers (class indices)")
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        if labels.min() < 0:
            raise SessionError(f"labels must be >= 0, found {int(labels.min())}")
        classes = np.unique(labels)
        scoring = single_class_allowed()
        if classes.size < 2 and not scoring:
            raise SessionError(
                f"labels hold a single class ({int(classes[0])}): nothing to decode"
            )
        missing = sorted(set(range(int(classes[-1]) + 1)) - set(classes.tolist()))
        if missing and not scoring:
            raise SessionError(
                f"labels must be classes 0..{int(classes[-1])} with each present; "
                f"class(es) {missing} never occur (renumber the labels)"
            )

        if isinstance(self.fs, (bool, np.bool_)):
            raise SessionError(f"fs must be a number in Hz, got {self.fs!r}")
        try:
            fs = float(self.fs)
        except (TypeError, ValueError) as exc:
            raise SessionError(f"fs must be a number, got {self.fs!r}") from exc
        if not np.isfinite(fs) or fs <= 0:
            raise SessionError(f"fs must be > 0 Hz, got {fs}")

        speed = None
        if self.speed is not None:
            speed = _float_array("speed", self.speed, 1)
            if speed.shape[0] != T:
                raise SessionError(f"speed has {speed.shape[0]} frames but traces has {T}")

        positions = None
        if self.positions is not None:
            positions = _float_array("positions", self.positions, 2)
            if positions.shape[1] != 2:
                raise SessionError(
                    f"positions must be [N, 2] (x, y), got shape {positions.shape}"
                )
            if positions.shape[0] != N:
                raise SessionError(
                    f"positions has {positions.shape[0]} neurons but traces has {N}"
                )

        meta = dict(self.meta or {})
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise SessionError(f"meta must be JSON-serialisable: {exc}") from exc

        for name, value in (
            ("traces", traces),
            ("labels", labels),
            ("fs", fs),
            ("speed", speed),
            ("positions", positions),
            ("meta", meta),
        ):
            object.__setattr__(self, name, value)
        for arr in (traces, labels, speed, positions):
            if arr is not None:
                arr.setflags(write=False)

    # ------------------------------------------------------------------ views
    @property
    def n_frames(self) -> int:
        return int(self.traces.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.traces.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1

    @property
    def label_names(self) -> list[str]:
        names = self.meta.get("label_names")
        if isinstance(names, list) and len(names) == self.n_classes:
            return [str(n) for n in names]
        return [f"class{i}" for i in range(self.n_classes)]

    def digest(self) -> str:
        """sha256 of the content (traces, labels, positions): identifies a session."""
        h = hashlib.sha256()
        for arr in (self.traces, self.labels, self.positions):
            if arr is not None:
                h.update(str(arr.shape).encode())
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def subset(self, index: np.ndarray) -> "Session":
        """Frames `index` of this session (same neurons)."""
        idx = np.asarray(index)
        return Session(
            traces=self.traces[idx],
            labels=self.labels[idx],
            fs=self.fs,
            speed=None if self.speed is None else self.speed[idx],
            positions=self.positions,
            meta=self.meta,
        )

    def __repr__(self) -> str:
        frac = float(np.mean(self.labels == 1)) if self.n_classes == 2 else float("nan")
        return (
            f"Session(T={self.n_frames}, N={self.n_neurons}, fs={self.fs:g} Hz, "
            f"classes={self.n_classes}, label1={frac:.1%}, "
            f"positions={'yes' if self.positions is not None else 'no'})"
        )
