"""`neurogrs replay` against a rig: the service may start later (wait by default, or up to
--wait-timeout), and SIGTERM stops it promptly even when it is blocked at the high-water
mark with nobody consuming. Real processes and sockets on loopback, every wait bounded."""
from __future__ import annotations

import shutil
import signal
import tempfile
import threading
import time

import numpy as np
import pytest
import zmq

from neurogrs.bench.process import EventProcess
from neurogrs.errors import ConfigError
from neurogrs.replay.player import Player, ReplaySettings
from neurogrs.stream import protocol as P
from stream_helpers import term_context

pytestmark = pytest.mark.timeout(90)
STARTUP_S = 30.0  # a subprocess importing numpy on a loaded machine


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    term_context(c)


@pytest.fixture
def short_dir():
    d = tempfile.mkdtemp(prefix="ngrs-", dir="/tmp")  # ipc:// paths must stay short
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _session(directory, T=200, N=500):
    from neurogrs.formats import save_session
    from neurogrs.session import Session

    traces = np.zeros((T, N), np.float32)  # 2 KB frames: the high-water mark fills fast
    return save_session(Session(traces, np.arange(T) % 2, fs=10.0), f"{directory}/rec.npz")


def _sink(ctx, endpoint, rcvhwm=1000):
    s = ctx.socket(zmq.SUB)
    s.linger = 0
    s.rcvhwm = rcvhwm
    s.subscribe(b"frame.")
    s.subscribe(b"end.")
    s.bind(endpoint)
    return s


def _receive_until_end(sink, timeout_s=15.0):
    msgs = []
    end = time.monotonic() + timeout_s
    while not (msgs and isinstance(msgs[-1], P.EndOfStream)):
        assert time.monotonic() < end, "replay did not stream once the service appeared"
        if sink.poll(200):
            msgs.append(P.decode_message(sink.recv_multipart()))
    return msgs


def _replay(*argv):
    return EventProcess(["-m", "neurogrs", "replay", *map(str, argv), "--no-progress"])


def test_sigterm_while_blocked_at_the_high_water_mark_exits_promptly(ctx, short_dir):
    rec = _session(short_dir)
    sink = _sink(ctx, "tcp://127.0.0.1:*", rcvhwm=10)  # subscribes, then never reads
    rep = _replay(rec, "--frames", ">" + sink.getsockopt_string(zmq.LAST_ENDPOINT),
                  "--speed", "max", "--loop", "--session-name", "r")
    try:
        assert sink.poll(int(STARTUP_S * 1000)), "replay never sent a frame"
        sink.recv_multipart()  # it streams; from now on nobody consumes
        time.sleep(1.0)  # at max speed the queues (HWM 1000 + 10 + kernel) fill in ms
        t0 = time.monotonic()
        rep.p.send_signal(signal.SIGTERM)
        code = rep.p.wait(timeout=10)
        took = time.monotonic() - t0
        done = rep.event("done", 5)
    finally:
        rep.stop()
        sink.close(linger=0)
    assert code == 0, "".join(rep.err)[-800:]
    assert took < 2.0, f"SIGTERM took {took:.2f} s"
    assert done["interrupted"] is True and done["hwm_waits"] > 0
    assert done["end_sent"] is False  # nobody could take it: said so, not pretended


def test_waits_for_a_service_that_starts_later_by_default(ctx, short_dir):
    assert ReplaySettings().subscriber_timeout_s is None  # was 30 s: a rig starts it later
    endpoint = f"ipc://{short_dir}/frames"
    player = Player(np.zeros((5, 4), np.float32), 100.0,
                    ReplaySettings(frames=">" + endpoint, session_name="r", speed=None),
                    context=ctx)
    player.open()
    out = {}

    def run():
        try:
            player.wait_for_subscriber()
            out["report"] = player.play()
        except Exception as exc:  # surfaced in the test thread
            out["error"] = exc
        finally:
            player.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(1.5)  # a short window without any service
    assert th.is_alive() and not out, out
    sink = _sink(ctx, endpoint)  # the service appears
    try:
        msgs = _receive_until_end(sink)
        th.join(5)
    finally:
        player.stop()
        th.join(5)
        sink.close(linger=0)
    assert [m.seq for m in msgs[:-1]] == list(range(5)) and out["report"].sent == 5


def test_cli_waits_by_default_and_streams_once_a_service_appears(ctx, short_dir):
    rec = _session(short_dir, T=20, N=4)
    endpoint = f"ipc://{short_dir}/frames"
    rep = _replay(rec, "--frames", ">" + endpoint, "--speed", "max", "--session-name", "r")
    try:
        waiting = rep.event("waiting", STARTUP_S)
        assert waiting["topic"] == "frame.r"
        time.sleep(1.0)  # nobody there yet: it keeps waiting
        assert rep.p.poll() is None
        sink = _sink(ctx, endpoint)  # the service appears (and reads, as a service does)
        try:
            _receive_until_end(sink)
            done = rep.event("done", 15)
        finally:
            sink.close(linger=0)
        assert rep.p.wait(5) == 0
    finally:
        rep.stop()
    assert done["sent"] == 20 and done["end_sent"] is True


def test_wait_timeout_stops_with_a_clear_error(short_dir):
    rec = _session(short_dir, T=20, N=4)
    rep = _replay(rec, "--frames", f">ipc://{short_dir}/nobody", "--session-name", "r",
                  "--wait-timeout", "0.5")
    try:
        code = rep.p.wait(STARTUP_S)
    finally:
        rep.stop()
    err = "".join(rep.err)
    assert code == 2, err
    assert "no subscriber for frame.r" in err and "within 0.5 s" in err


def test_wait_timeout_is_validated():
    for bad in (0, -1.0, "5"):
        with pytest.raises(ConfigError, match="subscriber_timeout_s"):
            ReplaySettings(subscriber_timeout_s=bad)
    assert ReplaySettings(subscriber_timeout_s=2.5).subscriber_timeout_s == 2.5
