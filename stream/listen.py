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
    restarts: int = 0  # sources that restarted a session (a prediction with a new run)
    _runs: dict = field(default_factory=dict)  # session -> [run, answered, skipped, errors]
    _orphaned: list = field(default_factory=lambda: [0, 0, 0])  # of runs that never ended

    def __post_init__(self) -> None:
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            k = max(int(self.labels.max()) + 1, 2)
            self._confusion = np.zeros((k, k), dtype=np.int64)

    def _run_counts(self, session: str, run: int | None) -> list:
        """The counts of `session`'s current run; a new run (a restarted source) sets the
        old run's aside: it never sends an end-of-stream, so it is not in `unaccounted`."""
        cur = self._runs.get(session)
        if cur is not None and run is not None and cur[0] is not None and run != cur[0]:
            self.restarts += 1
            for i in range(3):
                self._orphaned[i] += cur[i + 1]
            cur = None
        if cur is None:
            cur = self._runs[session] = [run, 0, 0, 0]
        elif run is not None:
            cur[0] = run
        return cur

    def add(self, msg: Any, received_ns: int) -> None:
        if isinstance(msg, P.Prediction):
            cur = self._run_counts(msg.session, msg.run)
            cur[1] += 1
            cur[2] += msg.skipped
            self._lat.append(received_ns - msg.t_src_ns)
            self._count += 1
            self.late += bool(msg.late)
            self.skipped += msg.skipped
            if self._confusion is not None:
                self._score(self.labels[msg.seq % len(self.labels)], msg.label)
        elif isinstance(msg, P.ErrorReport):
            self.errors[msg.reason] = self.errors.get(msg.reason, 0) + 1
            self._run_counts(msg.session, None)[3] += 1
        elif isinstance(msg, P.EndOfStream):
            self._runs.pop(msg.session, None)
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
                               "restarts": self.restarts,
                               "end_of_stream": list(self.ends)}
        out["latency_s"] = latency_percentiles(self.latencies_s())
        if self.ends:  # frames the source says it sent but that got neither answer nor report
            sent = sum(e["frames_sent"] for e in self.ends)
            answered, skipped, errors = (self.count - self._orphaned[0],
                                         self.skipped - self._orphaned[1],
                                         sum(self.errors.values()) - self._orphaned[2])
            out["unaccounted"] = sent - answered - skipped - errors
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
