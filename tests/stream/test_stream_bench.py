"""`bench service` runs end to end and prints its table (tiny sizes; numbers not judged)."""
from __future__ import annotations

import pytest

from neurogrs.stream.bench import BenchConfig, format_table, run_bench


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bench_service_small(artifact_dir, capsys):
    res = run_bench(BenchConfig(str(artifact_dir), engine="numpy", duration_s=0.5, rate=200,
                                max_frames=300, soak_frames=0))
    table = format_table(res)
    kinds = {(r["target"], r["run"]) for r in res["runs"]}
    assert {("echo", "10hz"), ("service", "200fps"), ("service", "flood")} <= kinds
    for r in res["runs"]:
        assert r["unaccounted"] == 0, r  # every frame answered or reported
    paced = [r for r in res["runs"] if r["run"] != "flood"]
    assert all(r["received"] > 0 for r in paced)
    assert "max sustained" in table and "service/echo p50" in table
