"""The soak's churn generator against a real service (loopback, bounded): short sessions
that never send end-of-stream, every churn frame answered or refused with a reason."""
from __future__ import annotations

import threading

import pytest

from neurogrs.bench.churn import run_churn
from stream_helpers import N, ctx, engine, start_service  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(60)


def test_churn_sessions_are_all_accounted(start_service):
    svc = start_service(policy="all", max_sessions=4)
    stop = threading.Event()
    res = run_churn(">" + svc.endpoints["frames"], ">" + svc.endpoints["predictions"],
                    sessions=6, per_session=3, duration_s=0.3, n_inputs=N, stop=stop)
    assert res["sessions"] == 6 and res["sent"] == 18 and not res["interrupted"]
    assert res["unanswered"] == 0, res
    # the session table holds 4 vanished sessions: without idle expiry the rest are refused
    assert res["answered"] + sum(res["errors"].values()) == 18
    assert res["answered"] >= 12
    assert svc.value("neurogrs_end_of_stream_total") == 0  # none of them said goodbye


def test_restarted_churn_sources_are_served_from_their_first_new_frame(start_service):
    """Half the sessions restart from seq 0 with a new run id: every frame of both runs is
    answered (without the run id the second run would be refused as seq_duplicate/decreasing)."""
    svc = start_service(policy="all", max_sessions=64)
    res = run_churn(">" + svc.endpoints["frames"], ">" + svc.endpoints["predictions"],
                    sessions=4, per_session=3, duration_s=0.2, n_inputs=N,
                    stop=threading.Event(), restart_every=2)
    assert res["restarts"] == 2 and res["sent"] == 4 * 3 + 2 * 3
    assert res["answered"] == res["sent"] and not res["errors"], res
    assert svc.value("neurogrs_source_restarts_total") == 2
