"""Listening to a service: collect predictions, score them online against a recording.

`Tally` is fed predictions as they arrive; `summary()` gives counts, latency percentiles
(t_src -> received by this client) and, given the recorded labels, online accuracy,
balanced accuracy and the best constant predictor (label of frame seq % T, the replay
convention), computed by `neurogrs.evaluate` from confusion counts.

Memory does not grow with the number of predictions (a listener may run for a month at
10 Hz): latencies go into a DDSketch (the `ddsketch` package, Datadog's quantile sketch),
whose percentiles are within LATENCY_RELATIVE_ACCURACY (1 %) of the exact ones and whose
size grows only with the logarithm of the latency range (the first EXACT_UP_TO are also
kept as they are, so a short run's percentiles are exact); scoring keeps confusion counts;
end-of-stream markers are totalled (the latest MAX_ENDS_LISTED are listed). `unaccounted`
is counted per run: an end-of-stream says how many frames its run sent, and that run's
answers, skipped frames and error reports are taken from it; runs that never end (a source
that crashed and restarted, or vanished) are not in it. Open runs are kept for the
MAX_RUNS_TRACKED sessions seen most recently (least recently seen out).
"""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
from ddsketch import DDSketch

from neurogrs.evaluate import metrics_from_confusion
from neurogrs.stream import protocol as P

__all__ = ["Tally", "format_prediction", "latency_percentiles", "LatencySketch",
           "PERCENTILES", "LATENCY_RELATIVE_ACCURACY", "MAX_RUNS_TRACKED"]

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# a reported percentile x' of the exact (lower) percentile x: |x' - x| <= 0.01 |x|
LATENCY_RELATIVE_ACCURACY = 0.01
MAX_ENDS_LISTED = 100
MAX_RUNS_TRACKED = 4096  # sessions accounted per run at once (least recently seen out)
EXACT_UP_TO = 10_000  # latencies also kept exactly (percentiles of short runs are exact)


class LatencySketch:
    """Latency percentiles in bounded memory, plus the exact maximum.

    The first EXACT_UP_TO latencies are also kept as they are (80 KB): percentiles of a
    short run are exact (np.percentile). Beyond that the DDSketch answers, within
    LATENCY_RELATIVE_ACCURACY of the exact percentiles."""

    def __init__(self, relative_accuracy: float = LATENCY_RELATIVE_ACCURACY,
                 exact_up_to: int = EXACT_UP_TO) -> None:
        self._sketch = DDSketch(relative_accuracy)
        self._exact: np.ndarray | None = np.empty(exact_up_to, dtype=np.float64)
        self._n = 0
        self.max_s: float | None = None

    def add(self, latency_s: float) -> None:
        self._sketch.add(latency_s)
        if self._exact is not None:
            if self._n < self._exact.size:
                self._exact[self._n] = latency_s
            else:
                self._exact = None  # from now on the sketch answers
        self._n += 1
        if self.max_s is None or latency_s > self.max_s:
            self.max_s = latency_s

    @property
    def count(self) -> int:
        return self._n

    def percentiles(self) -> dict[str, float | None]:
        if self._exact is not None:
            return latency_percentiles(self._exact[:self._n])
        return {**{f"p{p:g}": float(self._sketch.get_quantile_value(p / 100))
                   for p in PERCENTILES}, "max": self.max_s}


def latency_percentiles(lat_s: np.ndarray) -> dict[str, float | None]:
    """Exact percentiles of an array of latencies (seconds), same keys as LatencySketch."""
    if lat_s.size == 0:
        return {**{f"p{p:g}": None for p in PERCENTILES}, "max": None}
    q = np.percentile(lat_s, PERCENTILES)
    return {**{f"p{p:g}": float(v) for p, v in zip(PERCENTILES, q)}, "max": float(lat_s.max())}


@dataclass
class Tally:
    """What `listen` has seen, in memory that does not grow with the number of
    predictions: confusion counts for scoring, a sketch for latency percentiles, totals
    (and the latest MAX_ENDS_LISTED) of end-of-stream markers."""

    labels: np.ndarray | None = None  # recorded labels [T] (optional)
    late: int = 0
    skipped: int = 0
    errors: dict = field(default_factory=dict)  # by reason: a small fixed set
    ends: deque = field(default_factory=lambda: deque(maxlen=MAX_ENDS_LISTED))
    ends_total: int = 0
    frames_sent_total: int = 0  # over every end-of-stream seen
    _lat: LatencySketch = field(default_factory=LatencySketch)
    _count: int = 0
    _confusion: np.ndarray | None = None
    restarts: int = 0  # sources that restarted a session (a prediction with a new run)
    _runs: dict = field(default_factory=dict)  # session -> [run, answered, skipped, errors]
    _accounted: int = 0  # answers, skipped frames and reports of runs that ended
    _unattributed: int = 0  # error reports on error._ (a frame whose session is unknown)

    def __post_init__(self) -> None:
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            k = max(int(self.labels.max()) + 1, 2)
            self._confusion = np.zeros((k, k), dtype=np.int64)

    def _run_counts(self, session: str, run: int | None) -> list:
        """The counts of `session`'s current run; a new run (a restarted source) drops the
        old run's: it never sends an end-of-stream. At most MAX_RUNS_TRACKED sessions
        (the dict is kept in least-recently-seen order; the oldest goes)."""
        cur = self._runs.pop(session, None)
        if cur is not None and run is not None and cur[0] is not None and run != cur[0]:
            self.restarts += 1
            cur = None
        if cur is None:
            cur = [run, 0, 0, 0]
            if len(self._runs) >= MAX_RUNS_TRACKED:
                del self._runs[next(iter(self._runs))]
        elif run is not None:
            cur[0] = run
        self._runs[session] = cur
        return cur

    def add(self, msg: Any, received_ns: int) -> None:
        if isinstance(msg, P.Prediction):
            cur = self._run_counts(msg.session, msg.run)
            cur[1] += 1
            cur[2] += msg.skipped
            self._lat.add((received_ns - msg.t_src_ns) / 1e9)
            self._count += 1
            self.late += bool(msg.late)
            self.skipped += msg.skipped
            if self._confusion is not None:
                self._score(self.labels[msg.seq % len(self.labels)], msg.label)
        elif isinstance(msg, P.ErrorReport):
            self.errors[msg.reason] = self.errors.get(msg.reason, 0) + 1
            if msg.session == P.UNKNOWN_SESSION:  # error._: the frame's session unknown
                self._unattributed += 1
            else:
                self._run_counts(msg.session, None)[3] += 1
        elif isinstance(msg, P.EndOfStream):
            ended = self._runs.pop(msg.session, None)
            if ended is not None:
                self._accounted += ended[1] + ended[2] + ended[3]
            self.ends.append({"session": msg.session, "frames_sent": msg.frames})
            self.ends_total += 1
            self.frames_sent_total += msg.frames

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

    def summary(self) -> dict:
        out: dict[str, Any] = {"predictions": self.count, "late": self.late,
                               "skipped": self.skipped, "errors": dict(self.errors),
                               "restarts": self.restarts,
                               "end_of_stream": list(self.ends),
                               "end_of_stream_total": self.ends_total}
        # within LATENCY_RELATIVE_ACCURACY of the exact percentiles; max exact
        out["latency_s"] = self._lat.percentiles()
        if self.ends_total:  # frames the source says it sent but got neither answer nor report
            out["unaccounted"] = (self.frames_sent_total - self._accounted
                                  - self._unattributed)
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
