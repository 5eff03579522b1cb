"""A stateful model (temporal context) behind the real service on loopback sockets: one
engine state per session, fed every accepted frame in seq order (answered or not: stale
under `all`, conflated under `latest`), reset on a source restart and at end-of-stream.

Every published prediction is compared with the offline reference `forward(spec, frames)`
of the session's whole sequence, skipped frames included; tolerance 1e-5, as the engine
conformance suite (tests/inference/test_conformance_stateful.py).
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from neurogrs.artifact import save_artifact
from neurogrs.inference import load_engine
from neurogrs.layers_temporal import ForwardFilter, LeakyTraces, decays_from_taus
from neurogrs.spec import ModelSpec, Preprocessing, forward
from neurogrs.stream import protocol as P
from neurogrs.stream.client import Subscriber
from neurogrs.zoo import init_spec
from stream_helpers import N, Feeder, collect, errors, has_pred, preds

pytestmark = pytest.mark.timeout(90)
TOL = 1e-5


def stateful_spec() -> ModelSpec:
    """nn1 on a frame and its two leaky traces, a sticky forward filter at the end."""
    base = init_spec("nn1", 3 * N, np.random.default_rng(7), random_bias=True)
    filt = ForwardFilter(np.array([[0.9, 0.1], [0.15, 0.85]], np.float32),
                         np.array([0.6, 0.4], np.float32))
    rng = np.random.default_rng(8)
    pre = Preprocessing(N, mean=rng.normal(0, 0.2, N), scale=rng.uniform(0.8, 1.2, N))
    return ModelSpec(pre, (LeakyTraces(decays_from_taus([3.0, 15.0])), *base.layers, filt),
                     base.label_names, name="temporal")


SPEC = stateful_spec()


def frames(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.5, (n, N)).astype(np.float32)


def probs_of(msgs) -> dict[int, np.ndarray]:
    return {p.seq: np.array(p.probs, np.float32) for p in preds(msgs)}


def assert_matches(got: dict[int, np.ndarray], ref: np.ndarray) -> None:
    assert got
    for seq, p in got.items():
        err = float(np.max(np.abs(p - ref[seq])))
        assert err <= TOL, f"seq {seq}: max abs error {err:.2e} against forward()"


@pytest.fixture(scope="module", params=["numpy", "c"])
def stateful_engine(request, tmp_path_factory):
    path = save_artifact(SPEC, tmp_path_factory.mktemp("temporal") / "art")
    eng = load_engine(path, request.param)
    assert eng.stateful
    yield eng
    eng.close()


class Gate:
    """Wraps a stateful engine; once armed, the first predict() blocks until released, so
    the frames sent meanwhile wait in the service's queue (an exact backlog on inproc)."""

    def __init__(self, inner):
        self.inner = inner
        for a in ("name", "model_hash", "spec", "n_inputs", "n_outputs", "stateful"):
            setattr(self, a, getattr(inner, a))
        self.armed = False
        self.entered, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def new_state(self):
        return self.inner.new_state()

    def reset_state(self, state):
        self.inner.reset_state(state)

    def predict(self, x, state=None):
        if self.armed:
            self.calls += 1
            if not self.entered.is_set():
                self.entered.set()
                self.release.wait(5)
        return self.inner.predict(x, state)


def test_conflated_frames_advance_the_state(ctx, start_service, stateful_engine):
    """(a) under `latest` the skipped frames are fed to the state: the answer to the newest
    frame equals forward() over every frame, skipped ones included."""
    gate = Gate(stateful_engine)
    name = f"latest-{stateful_engine.name}"
    svc = start_service(eng=gate, policy="latest", frames=f"@inproc://f-{name}",
                        predictions=f"@inproc://p-{name}")
    gate.armed = True
    sub = Subscriber(f">inproc://p-{name}", "s1", context=ctx)
    sub.wait_hello(5)
    feed = Feeder(ctx, f"inproc://f-{name}", "s1")
    x = frames(60, 1)
    feed.frame(0, x[0])
    assert gate.entered.wait(5), "service never reached the engine"
    for seq in range(1, 50):
        feed.frame(seq, x[seq])
    gate.release.set()
    msgs = collect(sub, has_pred(49))
    assert [p.seq for p in preds(msgs)] == [0, 49] and preds(msgs)[1].skipped == 48
    assert svc.value("neurogrs_frames_dropped_total", {"reason": "conflated"}) == 48
    assert gate.calls == 50  # every frame went through the state, 2 were answered
    for seq in range(50, 60):  # and the stream goes on from there
        feed.frame(seq, x[seq])
        msgs += collect(sub, has_pred(seq))
    ref = forward(SPEC, x)
    assert_matches(probs_of(msgs), ref)
    # the state mattered: a fresh state would answer frame 49 differently
    assert np.max(np.abs(forward(SPEC, x[49:50])[0] - ref[49])) > 1e-3
    sub.close()


def test_stale_frames_advance_the_state(start_service, stateful_engine):
    """(a) under `all` a stale frame is reported, not answered, and still fed."""
    svc = start_service(eng=stateful_engine, policy="all", deadline_s=0.2)
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    x = frames(50, 2)
    old = time.time_ns() - 2_000_000_000
    for seq in range(50):
        feed.frame(seq, x[seq], t_src_ns=old if seq % 7 == 3 else None)
    msgs = collect(sub, has_pred(49))
    stale = [e.seq for e in errors(msgs) if e.reason == "stale"]
    assert stale == [s for s in range(50) if s % 7 == 3]
    assert sorted(probs_of(msgs)) == [s for s in range(50) if s % 7 != 3]
    assert_matches(probs_of(msgs), forward(SPEC, x))


def test_restart_and_end_of_stream_reset_the_state(start_service, stateful_engine):
    """(b) after a source restart (new run) and after end-of-stream, the first prediction
    equals a fresh state's; invalid frames do not touch the state."""
    svc = start_service(eng=stateful_engine, policy="all")
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    x, y, z = frames(55, 3), frames(52, 4), frames(50, 5)
    seqs = [1000 + t + (t > 20) for t in range(55)]  # seq 1021: an invalid frame
    for t in range(55):
        feed.raw(P.encode_frame("s1", seqs[t], x[t], run=111))
        if t == 20:  # a frame refused as invalid (NaN): reported, the state untouched
            feed.raw(P.encode_frame("s1", 1021, np.full(N, np.nan, np.float32), run=111))
    msgs = collect(sub, has_pred(seqs[-1]))
    assert [(e.reason, e.seq) for e in errors(msgs)] == [("non_finite", 1021)]
    got = probs_of(msgs)
    assert sorted(got) == seqs
    assert_matches({t: got[s] for t, s in enumerate(seqs)}, forward(SPEC, x))
    for seq in range(52):  # restarted from seq 0 under the same name
        feed.raw(P.encode_frame("s1", seq, y[seq], run=222))
    msgs = collect(sub, has_pred(51))
    assert svc.value("neurogrs_source_restarts_total") == 1
    got = probs_of(msgs)
    fresh = stateful_engine.predict(y[0], stateful_engine.new_state())
    assert np.max(np.abs(got[0] - fresh)) <= TOL
    # the old run's state would have answered otherwise
    old_run = stateful_engine.new_state()
    stateful_engine.predict_batch(x, old_run)
    assert np.max(np.abs(stateful_engine.predict(y[0], old_run) - fresh)) > 1e-3
    assert_matches(got, forward(SPEC, y))
    feed.end(52, frames=52)
    collect(sub, lambda m: any(isinstance(e, P.EndOfStream) for e in m))
    for seq in range(50):  # a new stream after the end: from a fresh state again
        feed.frame(seq, z[seq])
    assert_matches(probs_of(collect(sub, has_pred(49))), forward(SPEC, z))


def test_interleaved_sessions_keep_separate_states(start_service, stateful_engine):
    """(c) two sessions, frames interleaved: each answer follows its own session's past."""
    svc = start_service(eng=stateful_engine, policy="all")
    sub = svc.subscriber()
    fa, fb = svc.feeder("a"), svc.feeder("b")
    xa, xb = frames(50, 6), frames(50, 7)
    for seq in range(50):
        fa.frame(seq, xa[seq])
        fb.frame(seq, xb[seq])
    msgs = collect(sub, lambda m: len(preds(m)) == 100)
    for session, x in (("a", xa), ("b", xb)):
        got = {p.seq: np.array(p.probs, np.float32) for p in preds(msgs) if p.session == session}
        assert sorted(got) == list(range(50))
        assert_matches(got, forward(SPEC, x))
    assert not errors(msgs)
