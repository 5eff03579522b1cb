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
