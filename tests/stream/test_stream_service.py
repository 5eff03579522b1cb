"""The service on real loopback sockets: every bad input counted and reported while valid
frames around it are answered; policies, staleness, lateness, sequence accounting."""
from __future__ import annotations

import threading
import time

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurogrs.stream import protocol as P

from neurogrs.stream.client import Subscriber
from stream_helpers import N, Feeder, collect, errors, has_pred, preds

pytestmark = pytest.mark.timeout(60)


def _body(**over):
    d = {"v": 1, "session": "s1", "seq": 100, "t_src_ns": time.time_ns(), "dtype": "<f4",
         "shape": [N], "data": np.ones(N, np.float32).tobytes()}
    d.update(over)
    return msgpack.packb(d, use_bin_type=True)


BAD = {
    "garbage": lambda: [b"frame.s1", b"\xc1\xff\x00garbage"],
    "truncated": lambda: [b"frame.s1", _body()[:-7]],
    "wrong_parts": lambda: [b"frame.s1", _body(), b"extra"],
    "wrong_types": lambda: [b"frame.s1", _body(seq="100")],
    "wrong_dtype": lambda: [b"frame.s1", _body(dtype="<f8", data=np.ones(N).tobytes())],
    "wrong_shape": lambda: [b"frame.s1", _body(shape=[N + 1])],
    "shape_vs_data": lambda: [b"frame.s1", _body(data=np.ones(N - 1, np.float32).tobytes())],
    "nan": lambda: [b"frame.s1", _body(data=np.full(N, np.nan, np.float32).tobytes())],
    "inf": lambda: [b"frame.s1", _body(data=np.full(N, -np.inf, np.float32).tobytes())],
    "oversized": lambda: [b"frame.s1", _body(pad=b"\x00" * 5000)],
    "unknown_version": lambda: [b"frame.s1", _body(v=2)],
}
EXPECTED = {"garbage": "malformed", "truncated": "malformed", "wrong_parts": "malformed",
            "wrong_types": "bad_field", "wrong_dtype": "bad_dtype", "wrong_shape": "bad_shape",
            "shape_vs_data": "bad_shape", "nan": "non_finite", "inf": "non_finite",
            "oversized": "oversized", "unknown_version": "bad_version"}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_is_counted_reported_and_neighbours_answered(start_service, kind):
    svc = start_service(policy="all", max_body_bytes=4096)
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    feed.frame(0)
    feed.raw(BAD[kind]())
    feed.frame(1)
    msgs = collect(sub, has_pred(1))
    assert [p.seq for p in preds(msgs)] == [0, 1]
    errs = errors(msgs)
    assert [e.reason for e in errs] == [EXPECTED[kind]]
    reason = EXPECTED[kind]
    assert svc.value("neurogrs_bad_input_total", {"kind": reason}) == 1
    assert svc.value("neurogrs_frames_dropped_total", {"reason": "bad_input"}) == 1
    assert svc.value("neurogrs_frames_received_total") == 3
    assert svc.value("neurogrs_predictions_published_total") == 2


def test_duplicate_and_decreasing_seq_rejected(start_service):
    svc = start_service(policy="all")
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    for seq in (0, 1, 1, 0, 2):
        feed.frame(seq)
    msgs = collect(sub, has_pred(2))
    assert [p.seq for p in preds(msgs)] == [0, 1, 2]
    assert [(e.reason, e.seq) for e in errors(msgs)] == [("seq_duplicate", 1), ("seq_decreasing", 0)]
    assert svc.value("neurogrs_bad_input_total", {"kind": "seq_duplicate"}) == 1
    assert svc.value("neurogrs_bad_input_total", {"kind": "seq_decreasing"}) == 1


def test_seq_gap_counted_and_frames_answered(start_service):
    svc = start_service(policy="all")
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    for seq in (0, 1, 5, 6, 10):
        feed.frame(seq)
    msgs = collect(sub, has_pred(10))
    assert [p.seq for p in preds(msgs)] == [0, 1, 5, 6, 10]
    assert svc.value("neurogrs_frames_dropped_total", {"reason": "seq_gap"}) == 3 + 3


def test_a_rejected_frame_uses_up_its_seq(start_service):
    """A frame refused for its content (NaN) still arrived: the next frame is no seq gap
    (found by the C client example: 10 NaN frames of 100 were also counted as 9 lost)."""
    svc = start_service(policy="all")
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    nan = np.full(N, np.nan, np.float32)
    feed.frame(0)
    feed.frame(1, data=nan)
    feed.frame(2)
    feed.frame(3, data=nan)
    feed.frame(4, data=nan)
    feed.frame(6)
    msgs = collect(sub, has_pred(6))
    assert [p.seq for p in preds(msgs)] == [0, 2, 6]
    assert [(e.reason, e.seq) for e in errors(msgs)] == [("non_finite", 1), ("non_finite", 3),
                                                         ("non_finite", 4)]
    assert svc.value("neurogrs_frames_dropped_total", {"reason": "seq_gap"}) == 1  # seq 5 only


def test_end_of_stream_forwarded_and_resets_seq(start_service):
    svc = start_service(policy="all")
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    feed.frame(7)
    feed.end(8, frames=1)
    feed.frame(0)  # a new stream may start over
    msgs = collect(sub, has_pred(0))
    ends = [m for m in msgs if isinstance(m, P.EndOfStream)]
    assert ends == [P.EndOfStream("s1", 8, ends[0].t_src_ns, 1)]
    assert [p.seq for p in preds(msgs)] == [7, 0]
    assert not errors(msgs)


def test_stale_frame_dropped_and_reported(start_service):
    svc = start_service(policy="all", deadline_s=0.1)
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    feed.frame(0, t_src_ns=time.time_ns() - 300_000_000)
    feed.frame(1)
    msgs = collect(sub, has_pred(1))
    assert [p.seq for p in preds(msgs)] == [1]
    assert [(e.reason, e.seq) for e in errors(msgs)] == [("stale", 0)]
    assert svc.value("neurogrs_frames_dropped_total", {"reason": "stale"}) == 1


class SlowEngine:
    """Wraps an engine; predict takes `delay` s (simulates an engine slower than the deadline)."""

    def __init__(self, inner, delay):
        self.inner, self.delay = inner, delay
        self.name, self.model_hash, self.spec = inner.name, inner.model_hash, inner.spec
        self.n_inputs, self.n_outputs = inner.n_inputs, inner.n_outputs
        self.armed = False

    def predict(self, x):
        if self.armed:
            time.sleep(self.delay)
        return self.inner.predict(x)


def test_late_prediction_flagged_and_counted(start_service, engine):
    slow = SlowEngine(engine, 0.03)
    svc = start_service(eng=slow, policy="all", deadline_s=0.01)
    slow.armed = True
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    feed.frame(0)
    (p,) = preds(collect(sub, has_pred(0)))
    assert p.late and (p.t_pub_ns - p.t_src_ns) > 10_000_000
    assert svc.value("neurogrs_deadline_misses_total") == 1
    assert svc.value("neurogrs_end_to_end_seconds_bucket", {"le": "0.01"}) == 0
    assert svc.value("neurogrs_end_to_end_seconds_count") == 1


class GateEngine(SlowEngine):
    """The first armed predict() blocks until released: a backlog builds up meanwhile."""

    def __init__(self, inner):
        super().__init__(inner, 0)
        self.entered, self.release = threading.Event(), threading.Event()

    def predict(self, x):
        if self.armed and not self.entered.is_set():
            self.entered.set()
            self.release.wait(5)
        return self.inner.predict(x)


@pytest.mark.parametrize("policy,expected", [("latest", [0, 9]), ("all", list(range(10)))])
def test_policy_latest_drains_all_answers_every(ctx, start_service, engine, policy, expected):
    # inproc: a send lands in the service's queue at once, so the backlog is exact
    gate = GateEngine(engine)
    svc = start_service(eng=gate, policy=policy, frames="@inproc://frames-" + policy,
                        predictions="@inproc://preds-" + policy)
    gate.armed = True
    sub = Subscriber(">inproc://preds-" + policy, "s1", context=ctx)
    sub.wait_hello(5)
    feed = Feeder(ctx, "inproc://frames-" + policy, "s1")
    feed.frame(0)
    assert gate.entered.wait(5), "service never reached the engine"
    for seq in range(1, 10):
        feed.frame(seq)
    gate.release.set()
    msgs = collect(sub, has_pred(9))
    assert [p.seq for p in preds(msgs)] == expected
    conflated = svc.value("neurogrs_frames_dropped_total", {"reason": "conflated"})
    assert conflated == 10 - len(expected)
    # every frame is accounted for on the wire too: answered, or counted in `skipped`
    assert sum(p.skipped for p in preds(msgs)) == conflated
    assert len(preds(msgs)) + sum(p.skipped for p in preds(msgs)) == 10
    assert svc.value("neurogrs_frames_received_total") == 10
    sub.close()


def test_session_filter_ignores_other_sessions(start_service):
    svc = start_service(policy="all", sessions=("a",))
    sub = svc.subscriber(None)
    fa = svc.feeder("a")
    fa.frame(0, session="ab")  # prefix-matches frame.a but is another session
    fa.frame(0, session="a")
    msgs = collect(sub, has_pred(0))
    assert [(p.session, p.seq) for p in preds(msgs)] == [("a", 0)]
    assert svc.value("neurogrs_frames_received_total") == 1


def test_too_many_sessions(start_service):
    svc = start_service(policy="all", max_sessions=2)
    sub = svc.subscriber(None)
    feed = svc.feeder("a")
    for s in ("a", "b", "c", "a"):  # c: over the cap; the second a0: a duplicate
        feed.frame(0, session=s)
    msgs = collect(sub, lambda m: len(preds(m)) + len(errors(m)) >= 4)
    assert sorted((p.session, p.seq) for p in preds(msgs)) == [("a", 0), ("b", 0)]
    reasons = sorted(e.reason for e in errors(msgs))
    assert reasons == ["seq_duplicate", "too_many_sessions"]


# ------------------------------------------------------------------ property-based fuzz
_junk = st.one_of(
    st.binary(max_size=300).map(lambda b: [b"frame.fz", b]),
    st.lists(st.binary(max_size=40), min_size=1, max_size=4).map(lambda p: [b"frame.fz" + p[0][:3]] + p[1:]),
    st.dictionaries(st.sampled_from(["v", "session", "seq", "t_src_ns", "dtype", "shape", "data", "x"]),
                    st.one_of(st.integers(-5, 2**64 - 1), st.text(max_size=5), st.binary(max_size=90),
                              st.floats(), st.lists(st.integers(-3, 30), max_size=3), st.none()),
                    max_size=8).map(lambda d: [b"frame.fz", msgpack.packb(d, use_bin_type=True)]),
    st.sampled_from(["<f8", "<i4", "|u1"]).map(
        lambda dt: [b"frame.fz", _fz_body(dtype=dt)]),
    st.sampled_from([np.nan, np.inf, -np.inf]).map(
        lambda bad: [b"frame.fz", _fz_body(data=np.full(N, bad, np.float32).tobytes())]),
)


def _fz_body(**over):
    d = {"v": 1, "session": "fz", "seq": 10**9, "t_src_ns": time.time_ns(), "dtype": "<f4",
         "shape": [N], "data": np.ones(N, np.float32).tobytes()}
    d.update(over)
    return msgpack.packb(d, use_bin_type=True)


@pytest.fixture
def fuzz_service(start_service):
    # a long deadline: this test is about bad input; a stalled shared machine must not
    # turn valid frames stale
    svc = start_service(policy="all", max_sessions=4096, deadline_s=30.0)
    return svc, svc.subscriber("fz"), svc.feeder("fz")


@pytest.mark.timeout(120)
def test_fuzz_valid_frames_always_answered(fuzz_service):
    svc, sub, feed = fuzz_service
    total = {"junk": 0, "valid": 0}

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.one_of(_junk.map(lambda j: ("junk", j)), st.just(("valid", None))),
                    min_size=30, max_size=80))
    def run(items):
        seq = 0
        valid = []
        for kind, parts in items:
            if kind == "valid":
                feed.frame(seq, session="fz")
                valid.append(seq)
                seq += 1
            else:
                feed.raw(parts)
            total[kind] += 1
        feed.end(seq, frames=len(valid), session="fz")  # resets the session's seq tracking
        msgs = collect(sub, lambda m: any(isinstance(x, P.EndOfStream) for x in m), timeout=10)
        assert [p.seq for p in preds(msgs)] == valid, sorted({(e.reason, e.seq) for e in errors(msgs)})

    run()
    assert total["junk"] + total["valid"] >= 2000 and min(total.values()) >= 300, total
    assert svc.value("neurogrs_predictions_published_total") == total["valid"]


@pytest.mark.parametrize("engine_name", ["numpy", "numba", "c"])
def test_service_does_not_know_its_engine(start_service, artifact_dir, engine, engine_name):
    from neurogrs.errors import CompilerError
    from neurogrs.inference import load_engine

    try:
        eng = load_engine(artifact_dir, engine_name)
    except CompilerError as exc:
        pytest.skip(f"engine {engine_name} unavailable here: {exc}")
    svc = start_service(eng=eng, policy="all")
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(5, N)).astype(np.float32)
    for i, x in enumerate(xs):
        feed.frame(i, data=x)
    got = preds(collect(sub, has_pred(4)))
    want = engine.predict_batch(xs)  # the numpy reference
    np.testing.assert_allclose(np.array([p.probs for p in got]), want, rtol=1e-4, atol=1e-5)
    assert [p.label for p in got] == list(want.argmax(1))
    assert {p.model for p in got} == {eng.model_hash}
    hello = sub.hello
    assert hello.engine == engine_name and hello.n_inputs == N


def test_message_over_maxmsgsize_refused_by_libzmq_service_survives(start_service):
    svc = start_service(policy="all", max_body_bytes=4096, max_message_bytes=8192, deadline_s=5.0)
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    feed.sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # a resubscription after the reconnect shows
    feed.frame(0)
    collect(sub, has_pred(0))
    while feed.sock.poll(200):  # subscriptions already queued (the feeder read one of two)
        feed.sock.recv()
    feed.raw([b"frame.s1", b"\x00" * 100_000])  # libzmq drops the connection
    # the feeder reconnects by itself; its XPUB sees the service subscribe again
    if not feed.sock.poll(10_000, zmq.POLLIN):
        pytest.fail("feeder never reconnected")
    feed.sock.recv()
    feed.frame(1)
    msgs = collect(sub, has_pred(1))
    assert [p.seq for p in preds(msgs)] == [1]
    assert svc.value("neurogrs_frames_received_total") == 2


def test_engine_warmed_before_subscribing(start_service, engine):
    from neurogrs.stream.service import WARMUP_CALLS

    counting = SlowEngine(engine, 0)
    calls = []
    inner_predict = counting.predict
    counting.predict = lambda x: (calls.append(x.flags.writeable), inner_predict(x))[1]
    svc = start_service(eng=counting, policy="all")
    svc.feeder("s1")  # returns once the service's subscription arrived
    assert len(calls) >= WARMUP_CALLS
    assert calls[0] is False  # warmed with a read-only, wire-decoded frame


def test_latest_end_of_stream_inside_a_backlog_resets_seq_and_closes_the_stream(ctx, start_service,
                                                                               engine):
    # a backlog holding the end of one stream and the start of the next (inproc: exact).
    # The end resets the session where it stands in the queue (the new stream's seq 0 is
    # not "decreasing"), and the old stream's frames are accounted for before its end.
    gate = GateEngine(engine)
    start_service(eng=gate, policy="latest", frames="@inproc://frames-end",
                  predictions="@inproc://preds-end")
    gate.armed = True
    sub = Subscriber(">inproc://preds-end", "s1", context=ctx)
    sub.wait_hello(5)
    feed = Feeder(ctx, "inproc://frames-end", "s1")
    feed.frame(0)
    assert gate.entered.wait(5), "service never reached the engine"
    for seq in (1, 2):
        feed.frame(seq)
    feed.end(3, frames=3)
    for seq in (0, 1):
        feed.frame(seq)
    gate.release.set()
    msgs = collect(sub, lambda m: any(isinstance(x, P.Prediction) and x.seq == 1 for x in m))
    assert not errors(msgs)
    kinds = [(type(m).__name__, m.seq, getattr(m, "skipped", None)) for m in msgs]
    assert kinds == [("Prediction", 0, 0), ("Prediction", 2, 1), ("EndOfStream", 3, None),
                     ("Prediction", 1, 1)]
    sub.close()
