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


def test_session_idle_s_reaches_the_service_under_test(artifact_dir):
    # `bench service --session-idle-s` -> settings -> `serve --session-idle-s`: a session
    # that stops sending expires in the service the bench runs (the default 60 s would not)
    import time

    import numpy as np
    import zmq

    from neurogrs.bench.cli import service_bench_settings
    from neurogrs.bench.service import _start_target, stop_service
    from neurogrs.cli import build_parser
    from neurogrs.stream import protocol as P
    from stream_helpers import N

    args = build_parser().parse_args(["bench", "service", str(artifact_dir), "--engine",
                                      "numpy", "--session-idle-s", "0.2"])
    cfg = service_bench_settings(args)
    assert cfg.session_idle_s == 0.2
    proc = _start_target("service", cfg)
    ctx = zmq.Context()
    try:
        ready = proc.event("ready", 60)
        pub = ctx.socket(zmq.XPUB)
        pub.linger = 0
        pub.connect(ready["frames"])
        assert pub.poll(5000), "the service never subscribed"
        pub.send_multipart(P.encode_frame("gone", 0, np.zeros(N, np.float32)))
        time.sleep(1.2)  # idle past 0.2 s, and past the service's 0.5 s housekeeping
        pub.close(linger=0)
        code, final = stop_service(proc)
    finally:
        proc.kill()
        ctx.destroy(linger=0)
    assert code == 0 and final is not None
    assert final["frames_received"] == 1 and final["sessions_expired"] == 1


def test_session_idle_s_is_validated():
    from neurogrs.errors import ConfigError

    with pytest.raises(ConfigError, match="session_idle_s"):
        ServiceBenchSettings("art", session_idle_s=0.0)
    assert ServiceBenchSettings.from_dict(
        ServiceBenchSettings("art", session_idle_s=2.5).to_dict()).session_idle_s == 2.5


def test_format_table_reports_the_services_expired_sessions():
    res = {"config": {"engine": "c", "deadline_ms": 100.0, "session_idle_s": 2.5}, "runs": [],
           "ladder": [], "soak": None, "max_sustained_fps": 10,
           "service_final": {"sessions_expired": 3592, "source_restarts": 36}}
    table = format_table(res)
    assert "service at exit: 3592 sessions expired (--session-idle-s 2.5), 36 source restarts" in table
