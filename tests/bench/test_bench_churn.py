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
