"""Credit-based replay (`replay --credit N`): lockstep against the real service answers
every frame under the default `latest` policy; a window of N is never exceeded (measured
by an independent responder); conflated frames give their credit back; no answer is a
bounded wait; bad options are refused."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq

from neurogrs.errors import ConfigError, TransportTimeout
from neurogrs.formats import save_session
from neurogrs.replay.credit import CreditSettings, play_credit
from neurogrs.replay.player import Player, ReplaySettings
from neurogrs.session import Session
from neurogrs.stream import protocol as P
from stream_helpers import N, artifact_dir, term_context  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(90)


def test_lockstep_against_real_service_answers_every_frame(procs, artifact_dir, tmp_path):
    T = 300
    rng = np.random.default_rng(1)
    path = save_session(Session(rng.normal(size=(T, N)).astype(np.float32),
                                rng.integers(0, 2, T), fs=10.0), tmp_path / "rec.npz")
    # the default policy (latest): at --speed max nearly everything would be conflated
    srv = procs("serve", artifact_dir, "--engine", "numpy", "--frames", "@tcp://127.0.0.1:*",
                "--predictions", "@tcp://127.0.0.1:*", "--metrics-port", "-1")
    ready = srv.event("ready")
    assert ready["policy"] == "latest"
    lis = procs("listen", "--predictions", ">" + ready["predictions"], "--session", path,
                "--session-name", "rec", "--quiet", "--timeout", "30")
    lis.event("listening")
    rep = procs("replay", path, "--frames", ">" + ready["frames"], "--credit", "1",
                "--predictions", ">" + ready["predictions"], "--session-name", "rec",
                "--no-progress", "--wait-timeout", "20")
    done = rep.event("done", timeout=60)
    assert rep.wait() == 0
    assert done["mode"] == "credit" and done["credit"] == 1
    assert done["sent"] == T and done["answered"] == T
    assert done["skipped"] == 0 and done["reported"] == 0 and done["outstanding"] == 0
    assert done["max_in_flight"] == 1 and done["end_sent"]
    assert done["rate_fps"] > 0
    summary = lis.event("summary", timeout=30)
    # the independent listener saw every frame answered, none conflated
    assert summary["predictions"] == T and summary["skipped"] == 0 and summary["errors"] == {}
    assert summary["unaccounted"] == 0


class Responder:
    """A stand-in service that answers in bursts (every frame it has after `hold_s`) and
    records how many frames were unanswered each time one arrived (the true in-flight
    count, measured on the receiving side). `conflate`: answer only the newest of each
    burst, with `skipped` = the others (what the `latest` policy does)."""

    def __init__(self, ctx, hold_s=0.005, conflate=False, answer=True):
        self.sub = ctx.socket(zmq.SUB)
        self.pub = ctx.socket(zmq.XPUB)
        for s in (self.sub, self.pub):
            s.linger = 0
            s.bind("tcp://127.0.0.1:*")
        self.pub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sub.subscribe(b"")
        self.hold_s, self.conflate, self.answer = hold_s, conflate, answer
        self.in_flight_seen: list[int] = []
        self.runs: set = set()  # the run ids the frames carried
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def endpoint(self, sock):
        return ">" + sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def run(self):
        hello = P.encode_hello(P.Hello("m" * 16, "numpy", N, ("a", "b"), 10**8))
        enc = P.PredictionEncoder("m" * 16)
        held = []
        poller = zmq.Poller()
        poller.register(self.sub, zmq.POLLIN)
        poller.register(self.pub, zmq.POLLIN)
        while not self.stop.is_set():
            events = dict(poller.poll(1))
            if self.pub in events:
                if self.pub.recv()[:1] == b"\x01":
                    self.pub.send_multipart(hello)
            while self.sub.poll(0):
                parts = self.sub.recv_multipart()
                if parts[0].startswith(P.FRAME_PREFIX):
                    held.append(P.decode_frame(parts))
                    self.in_flight_seen.append(len(held))
                    self.runs.add(held[-1].run)
            if held and self.answer:
                time.sleep(self.hold_s)  # let the replayer fill its window
                while self.sub.poll(0):  # (none may arrive: the window is full)
                    parts = self.sub.recv_multipart()
                    if parts[0].startswith(P.FRAME_PREFIX):
                        held.append(P.decode_frame(parts))
                        self.in_flight_seen.append(len(held))
                batch = held[-1:] if self.conflate else held
                for f in batch:
                    now = time.time_ns()
                    self.pub.send_multipart(enc.encode(f.session, f.seq, f.t_src_ns, now, now, 0,
                                                       [1.0, 0.0], False,
                                                       len(held) - 1 if self.conflate else 0))
                held = []

    def close(self):
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    term_context(c)


def _player(ctx, responder, T=200, **cfg):
    traces = np.random.default_rng(0).normal(size=(T, N)).astype(np.float32)
    player = Player(traces, 100.0, ReplaySettings(frames=responder.endpoint(responder.sub),
                                                session_name="w", subscriber_timeout_s=5, **cfg),
                    context=ctx)
    player.open()
    return player


@pytest.mark.parametrize("credit", [1, 4])
def test_window_never_exceeds_credit(ctx, credit):
    resp = Responder(ctx)
    player = _player(ctx, resp)
    try:
        report = play_credit(player, CreditSettings(credit, resp.endpoint(resp.pub),
                                                    answer_timeout_s=5, hello_timeout_s=5))
    finally:
        player.close()
        resp.close()
    assert report.sent == report.answered == 200 and report.outstanding == 0
    assert max(resp.in_flight_seen) <= credit  # measured on the receiving side
    assert report.max_in_flight == credit
    if credit == 4:  # the window was used, not just lockstep
        assert max(resp.in_flight_seen) == 4
    assert report.rate_fps > 0
    # like `replay` without credit, every frame of one play carries one run id, so a
    # service sees a replay started again as a restarted source at once
    assert len(resp.runs) == 1 and None not in resp.runs


def test_conflated_frames_give_their_credit_back(ctx):
    resp = Responder(ctx, conflate=True)
    player = _player(ctx, resp)
    try:
        report = play_credit(player, CreditSettings(4, resp.endpoint(resp.pub),
                                                    answer_timeout_s=5, hello_timeout_s=5))
    finally:
        player.close()
        resp.close()
    assert report.sent == 200 and report.outstanding == 0
    assert report.skipped > 0  # bursts of several frames were conflated ...
    assert report.answered + report.skipped == report.sent  # ... and none was waited for


def test_no_answer_is_a_bounded_wait(ctx):
    resp = Responder(ctx, answer=False)
    player = _player(ctx, resp)
    t0 = time.monotonic()
    try:
        with pytest.raises(TransportTimeout, match="2 frame\\(s\\) in flight"):
            play_credit(player, CreditSettings(2, resp.endpoint(resp.pub),
                                               answer_timeout_s=0.5, hello_timeout_s=5))
    finally:
        player.close()
        resp.close()
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("bad", [{"credit": 0}, {"credit": 1.5}, {"credit": True},
                                 {"answer_timeout_s": 0}, {"predictions": "nonsense"},
                                 {"hello_timeout_s": -1}])
def test_bad_settings_refused(bad):
    with pytest.raises(ConfigError):
        CreditSettings(**bad)


def test_settings_round_trip():
    s = CreditSettings(3, ">tcp://127.0.0.1:5000", 2.5, None)
    assert CreditSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="unknown"):
        CreditSettings.from_dict({"window": 3})


def test_cli_refuses_credit_with_speed(procs, tmp_path):
    path = save_session(Session(np.zeros((20, N), np.float32), np.arange(20) % 2, fs=10.0),
                        tmp_path / "s.npz")
    pr = procs("replay", path, "--credit", "2", "--speed", "5", "--no-progress")
    assert pr.wait() == 2
    assert "--speed does not apply" in "".join(pr.err)
