"""The replayer: XPUB sync, pacing, start/loop/max_frames, restamp, end-of-stream, and no
silent loss at max speed against a slow receiver with a tiny high-water mark."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq

from neurogrs.errors import ConfigError, NeurogrsError
from neurogrs.replay.player import Player, ReplaySettings, default_session_name
from neurogrs.stream import protocol as P
from stream_helpers import term_context

pytestmark = pytest.mark.timeout(60)
T, N = 50, 8


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    term_context(c)


@pytest.fixture
def sink(ctx):
    s = ctx.socket(zmq.SUB)
    s.linger = 0
    s.bind("tcp://127.0.0.1:*")
    s.subscribe(b"frame.")
    s.subscribe(b"end.")
    return s


def _traces():
    return np.arange(T * N, dtype=np.float32).reshape(T, N)


def _play(ctx, sink, **cfg):
    cfg.setdefault("session_name", "r")
    player = Player(_traces(), 100.0, ReplaySettings(
        frames=">" + sink.getsockopt_string(zmq.LAST_ENDPOINT), **cfg), context=ctx)
    player.open()
    out = {}

    def run():
        try:
            player.wait_for_subscriber(5)
            out["report"] = player.play()
        except Exception as exc:  # surfaced in the test thread
            out["error"] = exc
        finally:
            player.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


def _receive(sink, slow_s=0.0, timeout=10):
    frames, end = [], None
    deadline = time.monotonic() + timeout
    while end is None:
        assert time.monotonic() < deadline, "replay did not finish"
        if not sink.poll(2000):
            continue
        msg = P.decode_message(sink.recv_multipart())
        if isinstance(msg, P.EndOfStream):
            end = msg
        else:
            frames.append((msg, time.time_ns()))
            if slow_s:
                time.sleep(slow_s)  # a slow consumer, not synchronisation
    return frames, end


def test_sends_every_frame_in_order_with_end(ctx, sink):
    th, out = _play(ctx, sink, speed=None)
    frames, end = _receive(sink)
    th.join(5)
    assert [f.seq for f, _ in frames] == list(range(T))
    np.testing.assert_array_equal(frames[7][0].data, _traces()[7])
    assert (end.seq, end.frames) == (T, T)
    assert out["report"].sent == T and out["report"].last_seq == T - 1


def test_paced_at_fs_times_speed(ctx, sink):
    th, out = _play(ctx, sink, speed=2.0)  # 100 Hz x 2: 5 ms apart, 245 ms in all
    frames, _ = _receive(sink)
    th.join(5)
    t_src = np.array([f.t_src_ns for f, _ in frames])
    np.testing.assert_allclose(np.diff(t_src), 5e6, atol=1)  # scheduled stamps: exact
    span = (frames[-1][1] - frames[0][1]) / 1e9
    assert span == pytest.approx(0.245, abs=0.05)


def test_restamp_uses_send_time(ctx, sink):
    th, out = _play(ctx, sink, speed=5.0, restamp=True)
    frames, _ = _receive(sink)
    th.join(5)
    lat = np.array([(r - f.t_src_ns) / 1e9 for f, r in frames])
    assert (lat >= 0).all() and np.median(lat) < 0.01


def test_start_loop_and_max_frames(ctx, sink):
    th, out = _play(ctx, sink, speed=None, start=45, loop=True, max_frames=10)
    frames, end = _receive(sink)
    th.join(5)
    seqs = [f.seq for f, _ in frames]
    assert seqs == list(range(45, 55))
    np.testing.assert_array_equal(frames[5][0].data, _traces()[0])  # seq 50 -> frame 0
    assert end.frames == 10


def test_max_speed_never_drops_against_slow_receiver(ctx, sink):
    sink.rcvhwm = 2
    th, out = _play(ctx, sink, speed=None, sndhwm=2)
    frames, end = _receive(sink, slow_s=0.005)
    th.join(5)
    assert [f.seq for f, _ in frames] == list(range(T))
    assert out["report"].sent == T


def test_no_subscriber_is_an_error(ctx):
    player = Player(_traces(), 10.0, ReplaySettings(frames=">tcp://127.0.0.1:9", session_name="x"),
                    context=ctx)
    player.open()
    try:
        with pytest.raises(NeurogrsError, match="no subscriber"):
            player.wait_for_subscriber(0.3)
    finally:
        player._sock.close(linger=0)
        player._sock = None


@pytest.mark.parametrize("kw", [{"speed": 0}, {"speed": -1.0}, {"start": -1}, {"session_name": "a.b"},
                                {"frames": "udp://x"}, {"max_frames": -3}])
def test_config_validates(kw):
    with pytest.raises(ConfigError):
        ReplaySettings(**kw)


def test_start_past_end_rejected():
    with pytest.raises(ConfigError):
        Player(_traces(), 10.0, ReplaySettings(start=T))


def test_default_session_name():
    assert default_session_name("/x/mouse 1.day2.npz") == "mouse_1_day2"
    assert default_session_name("/x/..npz") == "replay"


def test_each_play_sends_its_own_run_id(ctx, sink):
    # a restarted replay (same session name) is a new run: the service sees the restart
    runs = []
    for _ in range(2):
        th, out = _play(ctx, sink, speed=None)
        frames, end = _receive(sink)
        th.join(5)
        assert {f.run for f, _ in frames} == {end.run} and end.run is not None
        runs.append(end.run)
    assert runs[0] != runs[1]
