"""Which disconnects of a binding frame socket are oversized messages (stream/inputwatch.py):
libzmq drops the connection of a message over the receive limit while the publisher
keeps it open; a publisher that leaves closes it. Real sockets on loopback."""
from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest
import zmq
import zmq.auth

from neurogrs.stream import protocol as P
from neurogrs.stream.inputwatch import OVERSIZED, PEER_LEFT, _Peers
from neurogrs.stream.keys import create_keys
from stream_helpers import RECV_TIMEOUT_S, Feeder, collect, has_pred, preds

pytestmark = pytest.mark.timeout(60)
BIG = 1 << 20  # over the receive limit of the 20-input test model (4N + 16 KiB)


def _drain(sock):
    """Subscriptions already queued (the service subscribes to end. and frame.: the
    feeder read one of them), so the next one seen is the re-subscription."""
    while sock.poll(0):
        sock.recv()


def _resubscribed(feed):
    end = time.monotonic() + RECV_TIMEOUT_S
    while not (feed.sock.poll(50) and feed.sock.recv().startswith(b"\x01frame.")):
        assert time.monotonic() < end, "the publisher never reconnected"


def _until(what, timeout_s=RECV_TIMEOUT_S):
    end = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)  # polling a value, not synchronising sockets


def _oversized_then_served(svc, feed, sub, first):
    feed.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
    feed.frame(first)
    collect(sub, has_pred(first))
    _drain(feed.sock)
    feed.raw([b"frame.s1", b"\x00" * BIG])
    _resubscribed(feed)
    feed.frame(first + 1)
    assert [p.seq for p in preds(collect(sub, has_pred(first + 1)))] == [first + 1]


def test_oversized_message_over_ipc_is_counted(start_service, tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    svc = start_service(policy="all", deadline_s=5.0, frames=f"@ipc://{d}/f")
    sub = svc.subscriber("s1")
    feed = svc.feeder("s1")
    for first in (0, 10):  # twice: each drop counted once
        _oversized_then_served(svc, feed, sub, first)
    assert svc.value("neurogrs_oversized_messages_total") == 2


def test_descriptors_are_let_go_when_publishers_leave(start_service):
    svc = start_service(policy="all", deadline_s=5.0)
    sub = svc.subscriber("s1")
    watch = svc.service._watch
    feeds = [svc.feeder("s1") for _ in range(5)]
    _until(lambda: watch.watched == 5)
    for f in feeds:
        f.sock.close(linger=0)
    _until(lambda: watch.watched == 0)
    feed = svc.feeder("s1")
    _oversized_then_served(svc, feed, sub, 0)
    _until(lambda: watch.watched == 1)  # the reconnected publisher, nothing else
    assert svc.value("neurogrs_oversized_messages_total") == 1


def test_a_peer_failing_its_handshake_is_not_an_oversized_message(start_service):
    svc = start_service(policy="all")
    port = int(svc.endpoints["frames"].rsplit(":", 1)[1])
    bad_greeting = b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00NULL" + b"\x00" * 16 + b"\x01" * 40
    peers = []
    for _ in range(3):  # a garbage greeting, then the peer stays connected
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(bad_greeting)
        peers.append(c)
    feed = svc.feeder("s1")
    sub = svc.subscriber("s1")
    feed.frame(0)
    collect(sub, has_pred(0))
    _until(lambda: svc.service._watch.watched == 1)  # the failed peers are let go
    assert svc.value("neurogrs_oversized_messages_total") == 0
    for c in peers:
        c.close()


def test_curve_refused_peers_are_not_oversized_but_an_authorised_ones_big_message_is(
        ctx, start_service, tmp_path):
    keys = create_keys(tmp_path / "keys")
    svc = start_service(policy="all", deadline_s=5.0, curve_dir=str(keys))
    intruders = []
    for _ in range(3):  # a valid key pair that is not authorised; it stays connected
        s = ctx.socket(zmq.PUB)
        s.linger = 0
        s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
        s.curve_serverkey, _ = zmq.auth.load_certificate(str(keys / "server.key"))
        s.connect(svc.endpoints["frames"])
        intruders.append(s)
    _until(lambda: (svc.value("neurogrs_curve_handshake_failures_total") or 0) >= 3)
    from neurogrs.stream.client import Subscriber

    sub = Subscriber(">" + svc.endpoints["predictions"], "s1", curve_dir=str(keys), context=ctx)
    sub.wait_hello(RECV_TIMEOUT_S)
    feed = Feeder(ctx, svc.endpoints["frames"], "s1", curve_dir=str(keys))
    assert svc.value("neurogrs_oversized_messages_total") == 0
    _oversized_then_served(svc, feed, sub, 0)
    assert svc.value("neurogrs_oversized_messages_total") == 1
    for s in intruders:
        s.close(linger=0)
    sub.close()


# ------------------------------------------------------------------ _Peers, on socket pairs
def test_peers_tells_who_closed_the_connection():
    peers = _Peers()
    pairs = [socket.socketpair() for _ in range(4)]
    fds = [ours.fileno() for ours, _ in pairs]
    for fd in fds:
        peers.accepted(fd)
    (_, left), (_, reset), (_, quiet), (_, sending) = pairs
    left.close()  # the peer closed: end of file
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    reset.close()
    sending.sendall(b"the rest of a big message")  # the peer is still sending
    for ours, _ in pairs:
        ours.close()  # what libzmq does at the drop; the held duplicates keep the sockets
    assert [peers.disconnected(fd, False) for fd in fds] == [PEER_LEFT, PEER_LEFT, OVERSIZED,
                                                               OVERSIZED]
    assert len(peers) == 0
    quiet.close(), sending.close()


def test_peers_after_a_failed_handshake_or_unwatched_counts_nothing_oversized():
    peers = _Peers()
    ours, theirs = socket.socketpair()
    peers.accepted(ours.fileno())
    assert peers.disconnected(ours.fileno(), True) is None  # counted by stream/auth.py
    assert peers.disconnected(ours.fileno(), False) is PEER_LEFT  # not watched: not counted
    ours.close(), theirs.close()


def test_peers_sweep_lets_go_of_closed_descriptors():
    peers = _Peers(limit=2)
    a, pa = socket.socketpair()
    b, pb = socket.socketpair()
    c, pc = socket.socketpair()
    for s in (a, b, c):
        peers.accepted(s.fileno())
    assert len(peers) == 2  # bounded
    fd_a = a.fileno()
    a.close()  # libzmq closed it, and no event came
    peers.sweep()
    assert len(peers) == 1
    b_fd = b.fileno()
    b.close()
    reused = os.open(os.devnull, os.O_RDONLY)  # the number now names another file
    try:
        if reused == b_fd:
            peers.sweep()
            assert len(peers) == 0
    finally:
        os.close(reused)
    peers.sweep()
    assert len(peers) == 0
    assert fd_a >= 0
    peers.close()
    for s in (c, pa, pb, pc):
        s.close()


def test_the_watch_takes_at_most_a_quarter_of_the_descriptor_limit():
    import resource

    from neurogrs.stream.inputwatch import MAX_HELD, held_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(400, hard), hard))
        assert held_limit() == min(400, hard) // 4
        assert _Peers()._limit == held_limit()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert held_limit() <= MAX_HELD
