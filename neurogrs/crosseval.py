"""Cross-session evaluation: one decoder, several sessions of the same neurons.

Used by `neurogrs evaluate ARTIFACT SESSION...`, `train --eval-session`, `prune
--eval-session` and `neurogrs bench crosssession`. Every number comes from
`neurogrs.evaluate` (the numpy forward pass, what the engines compute).

Per session: frames, accuracy, balanced accuracy, and the **best constant predictor** on
that session beside them: its accuracy (always the session's most frequent class) and its
balanced accuracy, which for any constant predictor is 1 / (classes present) (recall 1 on
the class it answers, 0 on the others); `margin` is balanced accuracy minus that. The
**pooled** row sums the confusion counts over the sessions (so larger sessions weigh
more) and computes the same numbers from the sum.

A session holding a **single class** (scored only; load it inside
`neurogrs.session.scoring_only()`) is still reported: its balanced accuracy is the recall
of that one class (equal to its accuracy), the best constant predictor scores 1.0 on both,
so its margin is <= 0; the row says `single_class: true`.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from neurogrs.errors import SessionError
from neurogrs.evaluate import evaluate_spec, metrics_from_confusion
from neurogrs.session import Session
from neurogrs.spec import ModelSpec

__all__ = ["CROSS_SCHEMA", "row_from_metrics", "cross_evaluate", "pool_rows",
           "check_neurons", "format_cross_table"]

CROSS_SCHEMA = "neurogrs.cross-session/1"


def check_neurons(n_inputs: int, session: Session, name: str) -> None:
    """SessionError naming both counts when `session` records other neurons."""
    if session.n_neurons != n_inputs:
        raise SessionError(f"{name}: the artifact decodes {n_inputs} neurons, the session has "
                           f"{session.n_neurons}: it must record the same neurons")


def row_from_metrics(name: str, m: dict) -> dict:
    """A table row from `metrics_from_confusion` output, best constant predictor beside."""
    support = np.asarray(m["confusion"]).sum(axis=1)
    present = int(np.count_nonzero(support))
    best_bal = m["chance_balanced_accuracy"]  # any constant predictor: 1 / classes present
    return {
        "session": name,
        "frames": m["n"],
        "accuracy": m["accuracy"],
        "balanced_accuracy": m["balanced_accuracy"],
        "best_constant_accuracy": m["baseline_accuracy"],
        "best_constant_balanced_accuracy": best_bal,
        "best_constant_class": m["baseline_class"],
        "margin": m["balanced_accuracy"] - best_bal,
        "margin_accuracy": m["accuracy"] - m["baseline_accuracy"],
        "classes_present": present,
        "single_class": present == 1,
        "beats_baseline": m["beats_baseline"],
        "confusion": m["confusion"],
    }


def pool_rows(rows: Iterable[dict], name: str = "pooled") -> dict:
    """The pooled row: confusion counts summed over `rows` (padded to the largest)."""
    mats = [np.asarray(r["confusion"], dtype=np.int64) for r in rows]
    if not mats:
        raise SessionError("no session to pool")
    k = max(c.shape[0] for c in mats)
    total = np.zeros((k, k), dtype=np.int64)
    for c in mats:
        total[: c.shape[0], : c.shape[1]] += c
    return row_from_metrics(name, metrics_from_confusion(total))


def cross_evaluate(spec: ModelSpec, sessions: Sequence[tuple[str, Session]],
                   train_majority: int | None = None) -> dict:
    """Per-session rows and the pooled row of `spec` on every frame of each session.

    `sessions`: (name, session) pairs; each must record `spec.n_inputs` neurons. With
    `train_majority` each row also holds the accuracy of always answering the training
    part's majority class (`train_majority_accuracy`).
    """
    if not sessions:
        raise SessionError("no session to evaluate")
    rows = []
    for name, session in sessions:
        check_neurons(spec.n_inputs, session, name)
        m = evaluate_spec(spec, session, None, train_majority)
        row = {**row_from_metrics(name, m), "session_sha256": session.digest()}
        if "train_majority_accuracy" in m:
            row["train_majority_accuracy"] = m["train_majority_accuracy"]
        rows.append(row)
    return {"schema": CROSS_SCHEMA, "sessions": rows, "pooled": pool_rows(rows)}


def _fmt(x: float) -> str:
    return "  n/a" if x is None or not np.isfinite(x) else f"{x:.3f}"


def format_cross_table(result: dict, title: str | None = None) -> str:
    """Terminal table: one row per session, then the pooled row."""
    head = (f"{'session':<28} {'frames':>7} {'acc':>6} {'bal acc':>7} "
            f"{'const acc':>9} {'const bal':>9} {'margin':>7}")
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    rows = list(result["sessions"]) + [result["pooled"]]
    for i, r in enumerate(rows):
        if i == len(rows) - 1:
            lines.append("-" * len(head))
        name = str(r["session"])
        name = name if len(name) <= 28 else "..." + name[-25:]
        note = "  (single class)" if r["single_class"] else ""
        lines.append(f"{name:<28} {r['frames']:>7} {_fmt(r['accuracy']):>6} "
                     f"{_fmt(r['balanced_accuracy']):>7} {_fmt(r['best_constant_accuracy']):>9} "
                     f"{_fmt(r['best_constant_balanced_accuracy']):>9} "
                     f"{r['margin']:>+7.3f}{note}")
    lines.append("const: the best constant predictor on those frames (always the most frequent "
                 "class); margin: balanced accuracy minus the constant's (1 / classes present)")
    return "\n".join(lines)
