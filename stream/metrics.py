"""Every Prometheus metric the service exports, declared in one place, registry passed in.

Names are a contract with dashboards and alerts (docs/service.md lists them). Label values
are bounded: `reason`, `kind` and `stage` come from fixed tuples; no session or frame labels.

Hot-path metrics (counters and histograms updated per frame) are plain Python numbers owned
by the service thread, exported through one custom collector: an update is an integer
addition (no lock, no label lookup: the prometheus-client objects cost ~1-3 us each, and a
frame made about eight such calls). The collector reads the numbers at scrape time, so the
exposition is always current (no batching delay). Under the GIL a scrape sees every update
made before it; a histogram's bucket counts are copied in one step and `_count` is their
sum, so `_count` always equals the `+Inf` bucket. Rarely set values (the deadline, active
sessions, model info) stay prometheus-client objects.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Info
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from neurogrs.stream.protocol import BAD_INPUT_REASONS, DROP_REASONS, IGNORED_REASONS

__all__ = ["ServiceMetrics", "FastCounter", "FastHistogram", "DROP_REASONS", "STAGES",
           "stage_buckets", "end_to_end_buckets", "curve_handshake_failures"]

STAGES = ("decode", "inference", "publish")

# 10 us .. 1 s: the client library's defaults start at 5 ms, far too coarse here
_STAGE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
                  5e-2, 0.1, 0.25, 1.0)
_E2E_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0,
                2.5, 10.0)


def stage_buckets() -> tuple[float, ...]:
    return _STAGE_BUCKETS


def end_to_end_buckets(deadline_s: float) -> tuple[float, ...]:
    """Default edges plus one exactly at the deadline, so the SLO ratio is exact."""
    return tuple(sorted(set(_E2E_BUCKETS) | {float(deadline_s)}))


class FastCounter:
    """A counter (or one labelled child of it): `inc(n)` adds to a plain number.

    Same calls as prometheus-client's Counter (`inc`, `labels(**kw)`); labelled children
    exist only for the label values declared up front (bounded cardinality)."""

    __slots__ = ("name", "documentation", "labelnames", "value", "_children")

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...] = (),
                 label_values: tuple[str, ...] = ()) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.value = 0
        self._children: dict[str, FastCounter] = {
            v: FastCounter(name, documentation) for v in label_values} if labelnames else {}

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self.value += amount

    def labels(self, **kw: str) -> "FastCounter":
        (value,) = kw.values()  # one label per labelled counter here
        try:
            return self._children[value]
        except KeyError:
            raise ValueError(f"{self.name}: unknown label value {value!r}") from None

    def family(self) -> CounterMetricFamily:
        f = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames or None)
        if self.labelnames:
            for v, child in self._children.items():
                f.add_metric([v], float(child.value))
        else:
            f.add_metric([], float(self.value))
        return f


class FastHistogram:
    """A histogram (or one labelled child): `observe(x)` bumps one bucket count and the sum.

    Buckets are `le` (upper bound inclusive) like Prometheus's; `counts[i]` holds the
    observations in (bounds[i-1], bounds[i]], the last one the +Inf overflow."""

    __slots__ = ("name", "documentation", "labelnames", "bounds", "counts", "sum", "_children")

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...],
                 labelnames: tuple[str, ...] = (), label_values: tuple[str, ...] = ()) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.bounds = tuple(float(b) for b in buckets)
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"{name}: buckets must be strictly increasing")
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self._children: dict[str, FastHistogram] = {
            v: FastHistogram(name, documentation, buckets) for v in label_values} if labelnames else {}

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount

    def labels(self, **kw: str) -> "FastHistogram":
        (value,) = kw.values()
        try:
            return self._children[value]
        except KeyError:
            raise ValueError(f"{self.name}: unknown label value {value!r}") from None

    def _add(self, f: HistogramMetricFamily, label_values: list[str]) -> None:
        counts = self.counts[:]  # one copy: buckets and count consistent with each other
        total = 0
        buckets = []
        for b, c in zip(self.bounds, counts):
            total += c
            buckets.append((floatToGoString(b), total))
        total += counts[-1]
        buckets.append(("+Inf", total))
        f.add_metric(label_values, buckets, self.sum)

    def family(self) -> HistogramMetricFamily:
        f = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames or None)
        if self.labelnames:
            for v, child in self._children.items():
                child._add(f, [v])
        else:
            self._add(f, [])
        return f


class _Collector:
    """Exports the fast metrics of one ServiceMetrics (registered in its registry)."""

    def __init__(self, metrics: list) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator:
        for m in self._metrics:
            yield m.family()

    def describe(self) -> Iterator:
        return self.collect()


@dataclass
class ServiceMetrics:
    registry: CollectorRegistry
    frames_received: FastCounter
    predictions_published: FastCounter
    frames_dropped: FastCounter
    bad_input: FastCounter
    deadline_misses: FastCounter
    end_of_stream: FastCounter
    stage_seconds: FastHistogram
    end_to_end_seconds: FastHistogram
    drained_messages: FastHistogram
    sessions_active: Gauge
    deadline_seconds: Gauge
    model_info: Info
    # reliability (issue 9): restarts, expiry, input recovery, clock skew, ignored topics
    source_restarts: FastCounter
    sessions_expired: FastCounter
    oversized_messages: FastCounter
    input_reconnects: FastCounter
    frames_from_future: FastCounter
    service_deadline_misses: FastCounter
    messages_ignored: FastCounter
    service_seconds: FastHistogram
    clock_offset_seconds: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, deadline_s: float, model_hash: str,
               engine: str) -> "ServiceMetrics":
        m = cls(
            registry=registry,
            frames_received=FastCounter(
                "neurogrs_frames_received", "Messages received on frame topics (valid or not)."),
            predictions_published=FastCounter(
                "neurogrs_predictions_published", "Predictions published."),
            frames_dropped=FastCounter(
                "neurogrs_frames_dropped",
                "Frames that got no prediction, by reason (seq_gap counts frames never received).",
                ("reason",), DROP_REASONS),
            bad_input=FastCounter(
                "neurogrs_bad_input", "Rejected messages by kind (each also on error.<session>).",
                ("kind",), BAD_INPUT_REASONS),
            deadline_misses=FastCounter(
                "neurogrs_deadline_misses",
                "Predictions published later than the deadline after t_src (flagged late)."),
            end_of_stream=FastCounter(
                "neurogrs_end_of_stream", "End-of-stream markers received and forwarded."),
            stage_seconds=FastHistogram(
                "neurogrs_stage_seconds", "Time spent per frame in each stage.", _STAGE_BUCKETS,
                ("stage",), STAGES),
            end_to_end_seconds=FastHistogram(
                "neurogrs_end_to_end_seconds",
                "t_src to publish of each prediction (bucket edge at the deadline).",
                end_to_end_buckets(deadline_s)),
            drained_messages=FastHistogram(
                "neurogrs_drained_messages",
                "Messages taken from the frame socket per wake-up (backlog size).",
                (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096)),
            sessions_active=Gauge(
                "neurogrs_sessions_active", "Sessions with state (seq tracking) in the service.",
                registry=registry),
            deadline_seconds=Gauge(
                "neurogrs_deadline_seconds", "The configured per-frame deadline.",
                registry=registry),
            model_info=Info("neurogrs_model", "The served model and engine.", registry=registry),
            source_restarts=FastCounter(
                "neurogrs_source_restarts",
                "Sources that restarted a session (a frame with a new run id)."),
            sessions_expired=FastCounter(
                "neurogrs_sessions_expired",
                "Sessions forgotten after --session-idle-s without a frame."),
            oversized_messages=FastCounter(
                "neurogrs_oversized_messages",
                "Connections libzmq dropped for a message over the frame socket's receive "
                "limit (ZMQ_MAXMSGSIZE), connecting or binding."),
            input_reconnects=FastCounter(
                "neurogrs_input_reconnects",
                "Times the service reconnected its frame socket (libzmq would not)."),
            frames_from_future=FastCounter(
                "neurogrs_frames_from_future",
                "Frames whose t_src_ns is later than their receipt (source clock ahead)."),
            service_deadline_misses=FastCounter(
                "neurogrs_service_deadline_misses",
                "Predictions published more than the deadline after receipt (service clock)."),
            messages_ignored=FastCounter(
                "neurogrs_messages_ignored",
                "Messages on the frame socket dropped unanswered and unreported, by reason.",
                ("reason",), IGNORED_REASONS),
            service_seconds=FastHistogram(
                "neurogrs_service_seconds",
                "Receipt to publish of each prediction, on the service's clock.",
                end_to_end_buckets(deadline_s)),
            clock_offset_seconds=Gauge(
                "neurogrs_clock_offset_seconds",
                "Estimated source clock minus service clock (latest session estimate).",
                registry=registry),
        )
        registry.register(_Collector([
            m.frames_received, m.predictions_published, m.frames_dropped, m.bad_input,
            m.deadline_misses, m.end_of_stream, m.stage_seconds, m.end_to_end_seconds,
            m.drained_messages, m.source_restarts, m.sessions_expired, m.oversized_messages,
            m.input_reconnects, m.frames_from_future, m.service_deadline_misses,
            m.messages_ignored, m.service_seconds]))
        m.deadline_seconds.set(deadline_s)
        m.model_info.info({"hash": model_hash, "engine": engine})
        return m

    def snapshot(self) -> dict:
        """Current counter values as a plain dict (final metrics at shutdown, tests)."""
        g = self.registry.get_sample_value
        out = {
            "frames_received": g("neurogrs_frames_received_total"),
            "predictions_published": g("neurogrs_predictions_published_total"),
            "deadline_misses": g("neurogrs_deadline_misses_total"),
            "end_of_stream": g("neurogrs_end_of_stream_total"),
            "source_restarts": g("neurogrs_source_restarts_total"),
            "sessions_expired": g("neurogrs_sessions_expired_total"),
            "oversized_messages": g("neurogrs_oversized_messages_total"),
            "input_reconnects": g("neurogrs_input_reconnects_total"),
            "frames_from_future": g("neurogrs_frames_from_future_total"),
            "service_deadline_misses": g("neurogrs_service_deadline_misses_total"),
        }
        out["dropped"] = {r: g("neurogrs_frames_dropped_total", {"reason": r}) for r in DROP_REASONS}
        out["bad_input"] = {k: v for k in BAD_INPUT_REASONS
                            if (v := g("neurogrs_bad_input_total", {"kind": k}))}
        cnt = g("neurogrs_end_to_end_seconds_count") or 0.0
        out["end_to_end_mean_s"] = (g("neurogrs_end_to_end_seconds_sum") / cnt) if cnt else None
        return {k: (int(v) if isinstance(v, float) and k != "end_to_end_mean_s" else v)
                for k, v in out.items()} | {
            "dropped": {k: int(v or 0) for k, v in out["dropped"].items()},
            "bad_input": {k: int(v) for k, v in out["bad_input"].items()}}


def curve_handshake_failures(registry: CollectorRegistry) -> Counter:
    """Failed CURVE handshakes on the service's sockets (stream/auth.py; incremented by its
    monitor thread, hence a thread-safe prometheus-client Counter, exported with --curve)."""
    return Counter("neurogrs_curve_handshake_failures",
                   "Failed CURVE handshakes (unauthorised key, no CURVE, wrong server key).",
                   registry=registry)
