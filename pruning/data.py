"""The three parts of a session as pruning sees them (algorithms.md §2).

D_T (balanced training part, preprocessed for fine-tuning), D_V (validation: the only part
that drives decisions) and D_E (test: only ever reported). `decision_metric` reads D_V and
nothing else; `evaluate` reports both.

A stateful (temporal) spec is scored causally: its core inputs are computed once over the
whole session in time order (`features`), every evaluation runs the core and the trailing
stateful layers over them from a fresh state and keeps the frames of the part
(`val_index`, `test_index`). x_train is the same features at D_T.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurogrs.errors import SessionError
from neurogrs.evaluate import classification_metrics
from neurogrs.session import Session
from neurogrs.spec import ModelSpec, forward
from neurogrs.splits import Split
from neurogrs.temporal import core_inputs, run_from_features

__all__ = ["PruneData", "prepare", "decision_metric", "evaluate", "MIN_PART_FRAMES"]

# Fewer validation frames than this and one frame moves the metric by > 10%.
MIN_PART_FRAMES = 10


@dataclass(frozen=True, eq=False)
class PruneData:
    x_train: np.ndarray  # D_T, preprocessed for the model ([B, N] or [B, n, n, 1])
    y_train: np.ndarray  # int32
    val_frames: np.ndarray  # D_V raw frames [B, N] (forward() preprocesses)
    y_val: np.ndarray
    test_frames: np.ndarray  # D_E raw frames: reported, never decides
    y_test: np.ndarray
    majority_class: int  # most frequent class of the training part (baseline)
    n_classes: int
    # stateful specs only: core inputs of every frame of the session, in time order, and
    # where D_V / D_E sit in them
    features: np.ndarray | None = None
    val_index: np.ndarray | None = None
    test_index: np.ndarray | None = None

    def sizes(self) -> dict[str, int]:
        return {"train_balanced": int(self.y_train.size), "val": int(self.y_val.size),
                "test": int(self.y_test.size)}


def prepare(session: Session, split: Split, spec: ModelSpec) -> PruneData:
    """D_T / D_V / D_E of `session` for `spec` (its preprocessing), with sanity checks."""
    sizes = split.sizes()
    for part, name in (("balanced", "balanced training part D_T"), ("val", "validation part D_V"),
                       ("test", "test part D_E")):
        if sizes[part] < MIN_PART_FRAMES:
            raise SessionError(
                f"the session ({session.n_frames} frames) is too small for the split: the "
                f"{name} has {sizes[part]} frames, pruning needs at least {MIN_PART_FRAMES} "
                f"(split sizes {sizes})"
            )
    y_train = session.labels[split.balanced].astype(np.int32)
    if np.unique(y_train).size < 2:
        raise SessionError(f"the balanced training part D_T holds a single class "
                           f"({int(y_train[0])}): nothing to fine-tune on")
    if session.n_neurons != spec.n_inputs:
        raise SessionError(f"the model decodes {spec.n_inputs} neurons, the session has "
                           f"{session.n_neurons}")
    features = val_index = test_index = None
    if spec.stateful:
        features = core_inputs(spec, session.traces)
        val_index, test_index = split.val, split.test
        x_train = features[split.balanced]
    else:
        x_train = spec.preprocessing.apply(session.traces[split.balanced])
    return PruneData(
        x_train=x_train,
        y_train=y_train,
        val_frames=np.ascontiguousarray(session.traces[split.val], dtype=np.float32),
        y_val=session.labels[split.val].astype(np.int64),
        test_frames=np.ascontiguousarray(session.traces[split.test], dtype=np.float32),
        y_test=session.labels[split.test].astype(np.int64),
        majority_class=int(np.bincount(session.labels[split.train]).argmax()),
        n_classes=session.n_classes,
        features=features,
        val_index=val_index,
        test_index=test_index,
    )


def _metrics(spec: ModelSpec, part: str, data: PruneData) -> dict:
    y = data.y_val if part == "val" else data.y_test
    if spec.stateful:
        if data.features is None:
            raise SessionError("this PruneData was prepared for a frame-wise model; prepare "
                               "it with the stateful spec to score one")
        index = data.val_index if part == "val" else data.test_index
        probs = run_from_features(spec, data.features[: int(index.max()) + 1])[index]
    else:
        probs = forward(spec, data.val_frames if part == "val" else data.test_frames)
    return classification_metrics(y, probs.argmax(axis=1), data.majority_class, data.n_classes)


def decision_metric(spec: ModelSpec, data: PruneData, metric: str) -> float:
    """The metric that decides (D_V only)."""
    return float(_metrics(spec, "val", data)[metric])


def evaluate(spec: ModelSpec, data: PruneData) -> dict:
    """Validation and test metrics (the test part is reported, never used to decide)."""
    return {"val": _metrics(spec, "val", data), "test": _metrics(spec, "test", data)}
