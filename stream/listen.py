"""Listening to a service: collect predictions, score them online against a recording.

`Tally` is fed predictions as they arrive; `summary()` gives counts, latency percentiles
(t_src -> received by this client) and, given the recorded labels, online accuracy,
balanced accuracy and the best constant predictor (label of frame seq % T, the replay
convention), computed by `neurogrs.evaluate` from confusion counts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from neurogrs.evaluate import metrics_from_confusion
from neurogrs.stream import protocol as P

__all__ = ["Tally", "format_prediction", "latency_percentiles"]

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def latency_percentiles(lat_s: np.ndarray) -> dict[str, float | None]:
    if lat_s.size == 0:
        return {**{f"p{p:g}": None for p in PERCENTILES}, "max": None}
    q = np.percentile(lat_s, PERCENTILES)
    return {**{f"p{p:g}": float(v) for p, v in zip(PERCENTILES, q)}, "max": float(lat_s.max())}


@dataclass
class Tally:
    """What `listen` has seen. Scoring keeps confusion counts, not every prediction, so
    memory does not grow with the number of predictions scored (latencies are still kept
    for the percentiles)."""

    labels: np.ndarray | None = None  # recorded labels [T] (optional)
    late: int = 0
    skipped: int = 0
    errors: dict = field(default_factory=dict)
    ends: list = field(default_factory=list)
    _lat: list = field(default_factory=list)
    _count: int = 0
    _confusion: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            k = max(int(self.labels.max()) + 1, 2)
            self._confusion = np.zeros((k, k), dtype=np.int64)

    def add(self, msg: Any, received_ns: int) -> None:
        if isinstance(msg, P.Prediction):
            self._lat.append(received_ns - msg.t_src_ns)
            self._count += 1
            self.late += bool(msg.late)
            self.skipped += msg.skipped
            if self._confusion is not None:
                self._score(self.labels[msg.seq % len(self.labels)], msg.label)
        elif isinstance(msg, P.ErrorReport):
            self.errors[msg.reason] = self.errors.get(msg.reason, 0) + 1
        elif isinstance(msg, P.EndOfStream):
            self.ends.append({"session": msg.session, "frames_sent": msg.frames})

    def _score(self, truth: int, label: int) -> None:
        k = self._confusion.shape[0]
        if label >= k:  # the model answers a class the recording never shows
            grown = np.zeros((label + 1, label + 1), dtype=np.int64)
            grown[:k, :k] = self._confusion
            self._confusion = grown
        self._confusion[truth, label] += 1

    @property
    def count(self) -> int:
        return self._count

    def latencies_s(self) -> np.ndarray:
        return np.asarray(self._lat, dtype=np.int64) / 1e9

    def summary(self) -> dict:
        out: dict[str, Any] = {"predictions": self.count, "late": self.late,
                               "skipped": self.skipped, "errors": dict(self.errors),
                               "end_of_stream": list(self.ends)}
        out["latency_s"] = latency_percentiles(self.latencies_s())
        if self.ends:  # frames the source says it sent but that got neither answer nor report
            sent = sum(e["frames_sent"] for e in self.ends)
            out["unaccounted"] = (sent - self.count - self.skipped
                                  - sum(self.errors.values()))
        if self._confusion is not None and self.count:
            # label of frame seq % T (the replay convention); the same numbers as offline:
            # accuracy, balanced accuracy, the best constant predictor on the scored frames
            scores = metrics_from_confusion(self._confusion)
            scores.pop("n")
            out.update(scores)
        return out


def format_prediction(msg: P.Prediction, received_ns: int, as_json: bool) -> str:
    lat_ms = (received_ns - msg.t_src_ns) / 1e6
    if as_json:
        return json.dumps({"session": msg.session, "seq": msg.seq, "label": msg.label,
                           "probs": list(msg.probs), "late": msg.late, "latency_ms": lat_ms,
                           "t_src_ns": msg.t_src_ns, "model": msg.model})
    flag = " LATE" if msg.late else ""
    return (f"{msg.session} seq={msg.seq} label={msg.label} p={max(msg.probs):.3f} "
            f"latency={lat_ms:.3f} ms{flag}")


def print_summary(summary: dict, out: TextIO) -> None:
    print(json.dumps({"event": "summary", **summary}), file=out, flush=True)
