"""Transport: default endpoints, two-part I/O on real loopback sockets, zmq errors translated,
the exception tree's transport branch."""
from __future__ import annotations

import pytest
import zmq

import neurogrs.errors as errors_module
from neurogrs.errors import NeurogrsError, TransportError, TransportTimeout
from neurogrs.stream import transport as T
from neurogrs.stream.client import Subscriber
from stream_helpers import RECV_TIMEOUT_S


def _pair(ctx):
    rx, tx = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    for s in (rx, tx):
        s.linger = 0
    ep = T.parse_endpoint("@tcp://127.0.0.1:*").apply(rx)
    T.parse_endpoint(">" + ep).apply(tx)
    return rx, tx


def _recv(io, sock):
    assert sock.poll(int(RECV_TIMEOUT_S * 1000)), "nothing arrived"
    return io.recv_nowait()


def test_defaults_are_one_constant_each():
    assert (T.FRAMES_PORT, T.PREDICTIONS_PORT) == (5555, 5556)
    assert T.parse_endpoint(T.SERVICE_FRAMES, "connect") == T.Endpoint("bind", "tcp://127.0.0.1:5555")
    assert T.parse_endpoint(T.SERVICE_PREDICTIONS) == T.Endpoint("bind", "tcp://127.0.0.1:5556")
    assert T.parse_endpoint(T.CLIENT_FRAMES, "bind") == T.Endpoint("connect", "tcp://127.0.0.1:5555")
    assert T.parse_endpoint(T.CLIENT_PREDICTIONS, "bind") == T.Endpoint("connect",
                                                                        "tcp://127.0.0.1:5556")


def test_two_part_io_round_trip_and_empty_queue(ctx):
    rx, tx = _pair(ctx)
    rio, tio = T.two_part_io(rx), T.two_part_io(tx)
    assert rio.recv_nowait() is None  # nothing queued: None, not zmq.Again
    tio.send([b"frame.a", b"body"])
    assert _recv(rio, rx) == [b"frame.a", b"body"]
    assert tio.send_nowait([b"t", b"x" * 10_000]) is True
    assert _recv(rio, rx) == [b"t", b"x" * 10_000]
    tx.send_multipart([b"one", b"two", b"three"])  # any part count is received whole
    assert _recv(rio, rx) == [b"one", b"two", b"three"]


def test_send_nowait_reports_a_full_queue(ctx):
    push = ctx.socket(zmq.PUSH)  # no peer: nothing can be queued
    push.linger = 0
    push.sndhwm = 1
    assert T.two_part_io(push).send_nowait([b"a", b"b"]) is False


def test_public_api_only(ctx, monkeypatch):
    """pyzmq's private Cython socket (zmq.backend.Socket) saved ~0.5 us a message
    (docs/service.md): not worth a private API; the I/O works without it."""
    import zmq.backend

    monkeypatch.setattr(zmq.backend, "Socket", None)
    rx, tx = _pair(ctx)
    T.two_part_io(tx).send([b"a", b"b"])
    assert _recv(T.two_part_io(rx), rx) == [b"a", b"b"]


def test_zmq_errors_are_translated(ctx):
    taken = ctx.socket(zmq.SUB)
    taken.linger = 0
    ep = T.parse_endpoint("@tcp://127.0.0.1:*").apply(taken)
    other = ctx.socket(zmq.SUB)
    other.linger = 0
    with pytest.raises(TransportError, match="cannot bind"):
        T.parse_endpoint("@" + ep).apply(other)
    sub = ctx.socket(zmq.SUB)  # SUB cannot send: libzmq's ENOTSUP becomes TransportError
    sub.linger = 0
    with pytest.raises(TransportError, match="send failed"):
        T.two_part_io(sub).send([b"a", b"b"])


def test_no_service_is_a_transport_timeout(ctx):
    with Subscriber(">tcp://127.0.0.1:9", context=ctx) as sub:
        with pytest.raises(TransportTimeout, match="no service answered"):
            sub.wait_hello(0.2)


def test_exception_tree_transport_branch():
    assert issubclass(TransportTimeout, TransportError)
    assert issubclass(TransportError, NeurogrsError)
    assert not issubclass(TransportError, ValueError)  # not a bad value: the peer failed
    for name in errors_module.__all__:
        assert isinstance(getattr(errors_module, name), type)
    assert {"TransportError", "TransportTimeout"} <= set(errors_module.__all__)
    assert "TransportTimeout" in errors_module.__doc__
