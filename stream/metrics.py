"""Every Prometheus metric the service exports, declared in one place, registry passed in.

Names are a contract with dashboards and alerts (docs/service.md lists them). Label values
are bounded: `reason`, `kind` and `stage` come from fixed tuples; no session or frame labels.
"""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from neurogrs.stream.protocol import BAD_INPUT_REASONS

__all__ = ["ServiceMetrics", "DROP_REASONS", "STAGES", "stage_buckets", "end_to_end_buckets"]

DROP_REASONS = ("stale", "conflated", "seq_gap", "bad_input")
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


@dataclass
class ServiceMetrics:
    registry: CollectorRegistry
    frames_received: Counter
    predictions_published: Counter
    frames_dropped: Counter
    bad_input: Counter
    deadline_misses: Counter
    end_of_stream: Counter
    stage_seconds: Histogram
    end_to_end_seconds: Histogram
    drained_messages: Histogram
    sessions_active: Gauge
    deadline_seconds: Gauge
    model_info: Info

    @classmethod
    def create(cls, registry: CollectorRegistry, deadline_s: float, model_hash: str,
               engine: str) -> "ServiceMetrics":
        m = cls(
            registry=registry,
            frames_received=Counter(
                "neurogrs_frames_received", "Messages received on frame topics (valid or not).",
                registry=registry),
            predictions_published=Counter(
                "neurogrs_predictions_published", "Predictions published.", registry=registry),
            frames_dropped=Counter(
                "neurogrs_frames_dropped",
                "Frames that got no prediction, by reason (seq_gap counts frames never received).",
                ["reason"], registry=registry),
            bad_input=Counter(
                "neurogrs_bad_input", "Rejected messages by kind (each also on error.<session>).",
                ["kind"], registry=registry),
            deadline_misses=Counter(
                "neurogrs_deadline_misses",
                "Predictions published later than the deadline after t_src (flagged late).",
                registry=registry),
            end_of_stream=Counter(
                "neurogrs_end_of_stream", "End-of-stream markers received and forwarded.",
                registry=registry),
            stage_seconds=Histogram(
                "neurogrs_stage_seconds", "Time spent per frame in each stage.", ["stage"],
                buckets=_STAGE_BUCKETS, registry=registry),
            end_to_end_seconds=Histogram(
                "neurogrs_end_to_end_seconds",
                "t_src to publish of each prediction (bucket edge at the deadline).",
                buckets=end_to_end_buckets(deadline_s), registry=registry),
            drained_messages=Histogram(
                "neurogrs_drained_messages",
                "Messages taken from the frame socket per wake-up (backlog size).",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096), registry=registry),
            sessions_active=Gauge(
                "neurogrs_sessions_active", "Sessions with state (seq tracking) in the service.",
                registry=registry),
            deadline_seconds=Gauge(
                "neurogrs_deadline_seconds", "The configured per-frame deadline.",
                registry=registry),
            model_info=Info("neurogrs_model", "The served model and engine.", registry=registry),
        )
        for r in DROP_REASONS:
            m.frames_dropped.labels(reason=r)
        for k in BAD_INPUT_REASONS:
            m.bad_input.labels(kind=k)
        for s in STAGES:
            m.stage_seconds.labels(stage=s)
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
