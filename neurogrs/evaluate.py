"""Honest classification numbers: accuracy beside balanced accuracy and the baseline."""
from __future__ import annotations

import numpy as np

from neurogrs.session import Session
from neurogrs.spec import ModelSpec, forward

__all__ = ["classification_metrics", "evaluate_spec", "format_metrics"]


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, majority_class: int, n_classes: int
) -> dict:
    """accuracy, balanced accuracy, the majority-class baseline and whether it is beaten.

    `majority_class` is the most frequent class of the *training* part: the baseline is the
    accuracy of always predicting it. Balanced accuracy (mean per-class recall over the
    classes present) has chance level 1 / (classes present).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    acc = float(np.mean(y_true == y_pred)) if y_true.size else float("nan")
    present = np.unique(y_true)
    recalls = [float(np.mean(y_pred[y_true == c] == c)) for c in present]
    bal = float(np.mean(recalls)) if recalls else float("nan")
    baseline = float(np.mean(y_true == majority_class)) if y_true.size else float("nan")
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (y_true.astype(int), y_pred.astype(int)), 1)
    return {
        "n": int(y_true.size),
        "accuracy": acc,
        "balanced_accuracy": bal,
        "baseline_accuracy": baseline,
        "chance_balanced_accuracy": 1.0 / max(len(present), 1),
        "beats_baseline": bool(acc > baseline and bal > 1.0 / max(len(present), 1)),
        "confusion": confusion.tolist(),
    }


def format_metrics(name: str, m: dict) -> str:
    line = (f"{name:<5} acc {m['accuracy']:.3f}  balanced {m['balanced_accuracy']:.3f}  "
            f"baseline (majority) {m['baseline_accuracy']:.3f}  n={m['n']}")
    if not m["beats_baseline"]:
        line += "\n      WARNING: does not beat the majority-class baseline / chance"
    return line


def evaluate_spec(spec: ModelSpec, session: Session, index: np.ndarray | None,
                  majority_class: int) -> dict:
    """Metrics of the exported spec (numpy forward: what the engines compute)."""
    idx = np.arange(session.n_frames) if index is None else index
    probs = forward(spec, session.traces[idx])
    pred = probs.argmax(axis=1)
    return classification_metrics(session.labels[idx], pred, majority_class, spec.n_outputs)
