"""Metric names, buckets and values; the exposition passes the real `promtool check metrics`."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from neurogrs.stream.metrics import DROP_REASONS, STAGES, ServiceMetrics, end_to_end_buckets


def _metrics(deadline=0.1):
    reg = CollectorRegistry()
    return reg, ServiceMetrics.create(reg, deadline, "abc123", "numba")


def test_names_and_initial_values():
    reg, m = _metrics()
    g = reg.get_sample_value
    assert g("neurogrs_frames_received_total") == 0
    assert g("neurogrs_predictions_published_total") == 0
    assert g("neurogrs_deadline_misses_total") == 0
    for r in DROP_REASONS:
        assert g("neurogrs_frames_dropped_total", {"reason": r}) == 0
    for s in STAGES:
        assert g("neurogrs_stage_seconds_count", {"stage": s}) == 0
        assert g("neurogrs_stage_seconds_bucket", {"stage": s, "le": "1e-05"}) == 0
    assert g("neurogrs_model_info", {"hash": "abc123", "engine": "numba"}) == 1
    assert g("neurogrs_deadline_seconds") == pytest.approx(0.1)


def test_deadline_bucket_edge_is_exact():
    for deadline in (0.1, 0.033, 0.25):
        assert deadline in end_to_end_buckets(deadline)
    reg, m = _metrics(0.033)
    m.end_to_end_seconds.observe(0.033)
    m.end_to_end_seconds.observe(0.0331)
    assert reg.get_sample_value("neurogrs_end_to_end_seconds_bucket", {"le": "0.033"}) == 1
    assert reg.get_sample_value("neurogrs_end_to_end_seconds_count") == 2


def test_counts_and_snapshot():
    reg, m = _metrics()
    m.frames_received.inc(3)
    m.frames_dropped.labels(reason="stale").inc()
    m.bad_input.labels(kind="non_finite").inc(2)
    m.stage_seconds.labels(stage="inference").observe(2e-5)
    assert reg.get_sample_value("neurogrs_stage_seconds_bucket",
                                {"stage": "inference", "le": "2.5e-05"}) == 1
    snap = m.snapshot()
    assert snap["frames_received"] == 3
    assert snap["dropped"]["stale"] == 1
    assert snap["bad_input"] == {"non_finite": 2}


def test_label_cardinality_is_bounded():
    reg, m = _metrics()
    names = {s.name: s.labels for fam in reg.collect() for s in fam.samples}
    for labels in names.values():
        assert set(labels) <= {"reason", "kind", "stage", "le", "hash", "engine"}


def test_promtool_check_metrics():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus'); CI installs it")
    reg, m = _metrics()
    m.frames_received.inc()
    m.end_to_end_seconds.observe(0.001)
    text = generate_latest(reg)
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert res.returncode == 0, (res.stdout + res.stderr).decode()
    assert not (res.stdout + res.stderr).strip(), (res.stdout + res.stderr).decode()
