"""CURVE: a publisher whose key is not authorised gets nothing processed."""
from __future__ import annotations

import pytest
import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from neurogrs.stream import protocol as P
from neurogrs.stream.client import Subscriber
from neurogrs.stream.keys import create_keys
from stream_helpers import RECV_TIMEOUT_S, Feeder, collect, has_pred, preds

import numpy as np

pytestmark = pytest.mark.timeout(60)


def _wait_event(monitor, wanted, timeout_s=RECV_TIMEOUT_S):
    while monitor.poll(int(timeout_s * 1000)):
        ev = recv_monitor_message(monitor)
        if ev["event"] in wanted:
            return ev["event"]
    pytest.fail(f"no monitor event in {wanted} within {timeout_s} s")


def test_unauthorised_publisher_gets_nothing_processed(ctx, start_service, tmp_path):
    keys = create_keys(tmp_path / "keys")
    svc = start_service(policy="all", curve_dir=str(keys))
    # an intruder with a valid CURVE key pair that is not in authorized_clients/
    intruder = ctx.socket(zmq.PUB)
    intruder.linger = 0
    pub, sec = zmq.curve_keypair()
    intruder.curve_publickey, intruder.curve_secretkey = pub, sec
    intruder.curve_serverkey, _ = zmq.auth.load_certificate(str(keys / "server.key"))
    monitor = intruder.get_monitor_socket()
    intruder.connect(svc.endpoints["frames"])
    ev = _wait_event(monitor, {zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                               zmq.EVENT_DISCONNECTED})
    assert ev != zmq.EVENT_HANDSHAKE_SUCCEEDED
    for seq in range(5):
        intruder.send_multipart(P.encode_frame("s1", seq, np.zeros(20, np.float32)))
    # the authorised pair written by `neurogrs keys` works
    sub = Subscriber(">" + svc.endpoints["predictions"], "s1", curve_dir=str(keys), context=ctx)
    sub.wait_hello(RECV_TIMEOUT_S)
    feed = Feeder(ctx, svc.endpoints["frames"], "s1", curve_dir=str(keys))
    feed.frame(100)
    msgs = collect(sub, has_pred(100))
    assert [p.seq for p in preds(msgs)] == [100]
    assert svc.value("neurogrs_frames_received_total") == 1
    intruder.disable_monitor()
    monitor.close(linger=0)
    intruder.close(linger=0)
    sub.close()


def test_plain_subscriber_cannot_read_curve_service(ctx, start_service, tmp_path):
    keys = create_keys(tmp_path / "keys")
    svc = start_service(policy="all", curve_dir=str(keys))
    sub = Subscriber(">" + svc.endpoints["predictions"], "s1", context=ctx)
    with pytest.raises(Exception):
        sub.wait_hello(0.5)
    sub.close()


# ------------------------------------------ authorised by key, from any address (item 9)
@pytest.fixture
def short_dir():
    """ipc:// paths must fit in sun_path (108 bytes): pytest's tmp_path may not."""
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix="ngrs-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _intruder(ctx, keys, endpoint):
    """A PUB with a valid CURVE key pair that is not in authorized_clients/."""
    s = ctx.socket(zmq.PUB)
    s.linger = 0
    s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
    s.curve_serverkey, _ = zmq.auth.load_certificate(str(keys / "server.key"))
    s.connect(endpoint)
    return s


def _served_by_key_and_intruder_refused(ctx, svc, keys, frames_ep, preds_ep):
    sub = Subscriber(">" + preds_ep, "s1", curve_dir=str(keys), context=ctx)
    sub.wait_hello(RECV_TIMEOUT_S)
    feed = Feeder(ctx, frames_ep, "s1", curve_dir=str(keys))
    feed.frame(7)
    assert [p.seq for p in preds(collect(sub, has_pred(7)))] == [7]
    intruder = _intruder(ctx, keys, frames_ep)
    monitor = intruder.get_monitor_socket()
    _wait_event(monitor, {zmq.EVENT_HANDSHAKE_FAILED_AUTH})
    for seq in range(5):
        intruder.send_multipart(P.encode_frame("s2", seq, np.zeros(20, np.float32)))
    feed.frame(8)  # served after the intruder's attempt; the intruder's frames were not
    assert [p.seq for p in preds(collect(sub, has_pred(8)))] == [8]
    assert svc.value("neurogrs_frames_received_total") == 2
    intruder.disable_monitor()
    monitor.close(linger=0)
    intruder.close(linger=0)
    feed.sock.close(linger=0)
    sub.close()


def test_curve_over_ipc_serves_an_authorised_key(ctx, start_service, tmp_path, short_dir):
    keys = create_keys(tmp_path / "keys")
    svc = start_service(policy="all", curve_dir=str(keys), frames=f"@ipc://{short_dir}/f",
                        predictions=f"@ipc://{short_dir}/p")
    _served_by_key_and_intruder_refused(ctx, svc, keys, svc.endpoints["frames"],
                                        svc.endpoints["predictions"])


def test_curve_from_another_loopback_address_serves_an_authorised_key(ctx, start_service,
                                                                      tmp_path):
    keys = create_keys(tmp_path / "keys")
    svc = start_service(policy="all", curve_dir=str(keys), frames="@tcp://127.0.0.2:*",
                        predictions="@tcp://127.0.0.2:*")
    # peers connect from 127.0.0.2 (source address given: Linux would pick 127.0.0.1)
    src = "tcp://127.0.0.2:0;"
    _served_by_key_and_intruder_refused(
        ctx, svc, keys, src + svc.endpoints["frames"][len("tcp://"):],
        src + svc.endpoints["predictions"][len("tcp://"):])


# ------------------------------------------ failed handshakes counted, logged (item 11)
def _wait_value(svc, name, at_least, timeout_s=RECV_TIMEOUT_S):
    import time

    end = time.monotonic() + timeout_s
    while (svc.value(name) or 0) < at_least:
        if time.monotonic() > end:
            pytest.fail(f"{name} = {svc.value(name)} after {timeout_s} s, wanted >= {at_least}")
        time.sleep(0.02)  # polling a metric, not synchronising sockets
    return svc.value(name)


def test_failed_handshakes_are_counted_and_logged_rate_limited(ctx, start_service, tmp_path,
                                                               caplog):
    import logging

    caplog.set_level(logging.WARNING, logger="neurogrs.stream.auth")
    keys = create_keys(tmp_path / "keys")
    svc = start_service(policy="all", curve_dir=str(keys))
    assert svc.value("neurogrs_curve_handshake_failures_total") == 0
    intruders = []
    for _ in range(3):  # three refused peers (an unauthorised key), one after the other
        s = _intruder(ctx, keys, svc.endpoints["frames"])
        mon = s.get_monitor_socket()
        _wait_event(mon, {zmq.EVENT_HANDSHAKE_FAILED_AUTH})
        intruders.append((s, mon))
    _wait_value(svc, "neurogrs_curve_handshake_failures_total", 3)
    records = [r for r in caplog.records if "CURVE handshake" in r.getMessage()]
    assert len(records) == 1, [r.getMessage() for r in records]  # the rest held back
    assert "not authorised" in records[0].getMessage()
    assert svc.value("neurogrs_frames_received_total") == 0
    for s, mon in intruders:
        s.disable_monitor()
        mon.close(linger=0)
        s.close(linger=0)


def test_an_authorised_peer_counts_no_failure(ctx, start_service, tmp_path):
    keys = create_keys(tmp_path / "keys")
    svc = start_service(policy="all", curve_dir=str(keys))
    sub = Subscriber(">" + svc.endpoints["predictions"], "s1", curve_dir=str(keys), context=ctx)
    sub.wait_hello(RECV_TIMEOUT_S)
    feed = Feeder(ctx, svc.endpoints["frames"], "s1", curve_dir=str(keys))
    feed.frame(1)
    collect(sub, has_pred(1))
    assert svc.value("neurogrs_curve_handshake_failures_total") == 0
    feed.sock.close(linger=0)
    sub.close()


def test_guard_watches_a_socket_created_later_and_drops_closed_ones(ctx, tmp_path):
    """A socket recreated while the service runs (e.g. its input) is watched too."""
    from prometheus_client import CollectorRegistry

    from neurogrs.stream.auth import CurveGuard
    from neurogrs.stream.keys import configure_server

    keys = create_keys(tmp_path / "keys")
    registry = CollectorRegistry()
    guard = CurveGuard.start(ctx, keys, registry)
    socks = []
    try:
        for _ in range(2):  # the first is closed before the second exists
            if socks:
                socks[-1].close(linger=0)
            s = ctx.socket(zmq.SUB)
            s.linger = 0
            configure_server(s, keys)
            guard.watch(s)
            s.bind("tcp://127.0.0.1:*")
            socks.append(s)
        intruder = _intruder(ctx, keys, socks[-1].getsockopt_string(zmq.LAST_ENDPOINT))
        mon = intruder.get_monitor_socket()
        _wait_event(mon, {zmq.EVENT_HANDSHAKE_FAILED_AUTH})
        import time

        end = time.monotonic() + RECV_TIMEOUT_S
        while not registry.get_sample_value("neurogrs_curve_handshake_failures_total"):
            assert time.monotonic() < end, "failure on the later socket not counted"
            time.sleep(0.02)  # polling a metric, not synchronising sockets
        intruder.disable_monitor()
        mon.close(linger=0)
        intruder.close(linger=0)
    finally:
        for s in socks:
            s.close(linger=0)
        guard.stop()
