"""Honest classification numbers: accuracy beside balanced accuracy and the baseline.

One implementation for every place that scores decoded frames: `train` (validation, test,
`--eval-session`), `evaluate`, and `listen` (which keeps only confusion counts online and
calls `metrics_from_confusion`).

The baseline is the **best constant predictor on the evaluated frames**: the accuracy of
always answering the class most frequent *there*. A model that does not beat it (or whose
balanced accuracy is at chance) gets a WARNING. When the training part's majority class
is known, the accuracy of always answering it is reported beside, named as such
(`train_majority_accuracy`); it is never the stronger of the two.
"""
from __future__ import annotations

import numpy as np

from neurogrs.session import Session
from neurogrs.spec import ModelSpec
from neurogrs.temporal import session_probabilities

__all__ = ["classification_metrics", "metrics_from_confusion", "evaluate_spec",
           "format_metrics"]


def metrics_from_confusion(confusion: np.ndarray, train_majority: int | None = None) -> dict:
    """Metrics of a confusion matrix (rows: true class, columns: predicted class).

    n, accuracy, balanced accuracy (mean recall over the classes present; chance is
    1 / classes present), `baseline_accuracy` and `baseline_class` (the best constant
    predictor on these frames), `beats_baseline` (accuracy above that baseline and balanced
    accuracy above chance), the confusion matrix; with `train_majority` also
    `train_majority_class` and `train_majority_accuracy`.
    """
    c = np.asarray(confusion, dtype=np.int64)
    n = int(c.sum())
    support = c.sum(axis=1)
    present = np.flatnonzero(support)
    nan = float("nan")
    acc = float(np.trace(c)) / n if n else nan
    bal = float(np.mean(np.diag(c)[present] / support[present])) if present.size else nan
    best = int(np.argmax(support))
    chance = 1.0 / max(present.size, 1)
    baseline = float(support[best]) / n if n else nan
    out = {
        "n": n,
        "accuracy": acc,
        "balanced_accuracy": bal,
        "baseline_accuracy": baseline,
        "baseline_class": best,
        "chance_balanced_accuracy": chance,
        "beats_baseline": bool(acc > baseline and bal > chance),
        "confusion": c.tolist(),
    }
    if train_majority is not None:
        k = int(train_majority)
        hits = int(support[k]) if 0 <= k < support.size else 0
        out["train_majority_class"] = k
        out["train_majority_accuracy"] = hits / n if n else nan
    return out


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, majority_class: int | None, n_classes: int
) -> dict:
    """`metrics_from_confusion` of labels and predictions.

    `majority_class`: the most frequent class of the *training* part (reported as
    `train_majority_accuracy`), or None when there is no training part.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = max(int(n_classes), int(y_true.max(initial=0)) + 1, int(y_pred.max(initial=0)) + 1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    return metrics_from_confusion(confusion, majority_class)


def format_metrics(name: str, m: dict) -> str:
    line = (f"{name:<5} acc {m['accuracy']:.3f}  balanced {m['balanced_accuracy']:.3f}  "
            f"baseline (best constant) {m['baseline_accuracy']:.3f}")
    if "train_majority_accuracy" in m:
        line += f"  (training majority {m['train_majority_accuracy']:.3f})"
    line += f"  n={m['n']}"
    if not m["beats_baseline"]:
        always = f"always class {m['baseline_class']}: " if "baseline_class" in m else ""
        line += (f"\n      WARNING: does not beat the best constant predictor ({always}"
                 f"{m['baseline_accuracy']:.3f}) / chance balanced accuracy "
                 f"({m['chance_balanced_accuracy']:.3f})")
    return line


def evaluate_spec(spec: ModelSpec, session: Session, index: np.ndarray | None,
                  majority_class: int | None) -> dict:
    """Metrics of the exported spec (numpy forward: what the engines compute).

    A stateful (temporal) spec runs the session in time order from a fresh state and is
    scored on the frames `index` (causal: each output saw only past and present frames).
    """
    idx = np.arange(session.n_frames) if index is None else index
    probs = session_probabilities(spec, session.traces, idx)
    pred = probs.argmax(axis=1)
    return classification_metrics(session.labels[idx], pred, majority_class, spec.n_outputs)
