"""`bench service` runs end to end and prints its table (tiny sizes; numbers not judged)."""
from __future__ import annotations

import pytest

from neurogrs.bench.service import ServiceBenchSettings, format_table, run_bench


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bench_service_small(artifact_dir, capsys):
    res = run_bench(ServiceBenchSettings(str(artifact_dir), engine="numpy", duration_s=0.5, rate=200,
                                max_frames=300, soak_frames=0))
    table = format_table(res)
    kinds = {(r["target"], r["run"]) for r in res["runs"]}
    assert {("echo", "10hz"), ("service", "200fps"), ("service", "flood")} <= kinds
    for r in res["runs"]:
        assert r["unaccounted"] == 0, r  # every frame answered or reported
    paced = [r for r in res["runs"] if r["run"] != "flood"]
    assert all(r["received"] > 0 for r in paced)
    assert "max sustained" in table and "service/echo p50" in table


def test_format_table_reports_the_soak_rss_trend():
    row = {"target": "service", "run": "soak@10", "sent": 10, "lost": 0, "reported": 0,
           "misses": 0, "p50_ms": 0.2, "p99_ms": 0.3, "p999_ms": 0.4, "max_ms": 0.5,
           "rate_fps": 10.0, "cpu_us": 50.0, "received": 10, "rss_start_mb": 40.0,
           "rss_end_mb": 40.5, "rss_tenths_mb": [40.0 + k / 20 for k in range(1, 11)]}
    res = {"config": {"engine": "c", "deadline_ms": 100.0}, "runs": [], "ladder": [],
           "soak": row, "max_sustained_fps": 10}
    table = format_table(res)
    assert "service RSS 40.0 -> 40.5 MiB" in table
    assert "after each tenth (MiB): 40.0 40.1 40.1 40.2 40.2 40.3 40.4 40.4 40.5 40.5" in table
