"""Listening to a service: collect predictions, score them online against a recording.

`Tally` is fed predictions as they arrive; `summary()` gives counts, latency percentiles
(t_src -> received by this client) and, given the recorded labels, online accuracy and
balanced accuracy (label of frame seq % T, the replay convention).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

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
    labels: np.ndarray | None = None  # recorded labels [T] (optional)
    _lat: list = field(default_factory=list)
    _seq: list = field(default_factory=list)
    _pred: list = field(default_factory=list)
    late: int = 0
    skipped: int = 0
    errors: dict = field(default_factory=dict)
    ends: list = field(default_factory=list)

    def add(self, msg: Any, received_ns: int) -> None:
        if isinstance(msg, P.Prediction):
            self._lat.append(received_ns - msg.t_src_ns)
            self._seq.append(msg.seq)
            self._pred.append(msg.label)
            self.late += bool(msg.late)
            self.skipped += msg.skipped
        elif isinstance(msg, P.ErrorReport):
            self.errors[msg.reason] = self.errors.get(msg.reason, 0) + 1
        elif isinstance(msg, P.EndOfStream):
            self.ends.append({"session": msg.session, "frames_sent": msg.frames})

    @property
    def count(self) -> int:
        return len(self._seq)

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
        if self.labels is not None and self.count:
            seq = np.asarray(self._seq, dtype=np.int64)
            y_true = np.asarray(self.labels)[seq % len(self.labels)]
            y_pred = np.asarray(self._pred)
            out["accuracy"] = float(np.mean(y_true == y_pred))
            recalls = [float(np.mean(y_pred[y_true == c] == c)) for c in np.unique(y_true)]
            out["balanced_accuracy"] = float(np.mean(recalls))
            # the majority-class baseline of the recording, beside accuracy (honest numbers)
            majority = int(np.bincount(np.asarray(self.labels)).argmax())
            out["baseline_accuracy"] = float(np.mean(y_true == majority))
            out["beats_baseline"] = bool(out["accuracy"] > out["baseline_accuracy"]
                                         and out["balanced_accuracy"] > 1.0 / max(len(recalls), 1))
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
