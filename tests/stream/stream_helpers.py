"""Socket fixtures that fail instead of hanging: ephemeral loopback ports, linger 0,
every receive bounded, service threads joined with a timeout."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq

from neurogrs.artifact import save_artifact
from neurogrs.inference import load_engine
from neurogrs.stream import protocol as P
from neurogrs.stream.client import Subscriber
from neurogrs.stream.service import Service, ServiceSettings
from neurogrs.zoo import init_spec

N = 20
RECV_TIMEOUT_S = 5.0
TERM_TIMEOUT_S = 10.0
ANY = "@tcp://127.0.0.1:*"


def term_context(ctx, timeout=TERM_TIMEOUT_S):
    """Close a context's sockets and terminate it in a thread (pyzmq's own fixtures do
    this): a socket left blocking makes term() hang; here that fails the test instead."""
    t = threading.Thread(target=ctx.destroy, kwargs={"linger": 0}, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"zmq context did not terminate within {timeout} s (a socket still in use?)")


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("art") / "art"
    save_artifact(init_spec("nn1", N, np.random.default_rng(0)), d)
    return d


@pytest.fixture(scope="session")
def engine(artifact_dir):
    return load_engine(artifact_dir, "numpy")


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    term_context(c)


class Feeder:
    """XPUB connected to the service's frame socket; waits for the subscription."""

    def __init__(self, ctx, endpoint, session="s1", curve_dir=None, wait=True):
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.linger = 0
        self.sock.setsockopt(zmq.XPUB_NODROP, 1)
        if curve_dir is not None:
            from neurogrs.stream.keys import configure_client

            configure_client(self.sock, curve_dir)
        self.sock.connect(endpoint)
        self.session = session
        if wait:
            if not self.sock.poll(int(RECV_TIMEOUT_S * 1000), zmq.POLLIN):
                pytest.fail("service never subscribed to the feeder")
            self.sock.recv()

    def raw(self, parts):
        if not self.sock.poll(int(RECV_TIMEOUT_S * 1000), zmq.POLLOUT):
            pytest.fail("feeder blocked at the high-water mark")
        self.sock.send_multipart(parts, zmq.NOBLOCK)

    def frame(self, seq, data=None, t_src_ns=None, session=None):
        data = np.random.default_rng(seq).normal(size=N).astype(np.float32) if data is None else data
        self.raw(P.encode_frame(session or self.session, seq, data, t_src_ns))

    def end(self, seq, frames=0, session=None):
        self.raw(P.encode_end(session or self.session, seq, frames))


class Running:
    def __init__(self, service, thread, ctx):
        self.service, self.thread, self.ctx = service, thread, ctx
        self.endpoints = service.endpoints
        self.metrics = service.metrics
        self.registry = service.registry

    def value(self, name, labels=None):
        return self.registry.get_sample_value(name, labels or {})

    def subscriber(self, session=None):
        sub = Subscriber(">" + self.endpoints["predictions"], session, context=self.ctx)
        sub.wait_hello(RECV_TIMEOUT_S)
        return sub

    def feeder(self, session="s1", **kw):
        return Feeder(self.ctx, self.endpoints["frames"], session, **kw)


@pytest.fixture
def start_service(ctx, engine):
    """start_service(engine=..., run=True, **ServiceSettings fields) -> Running."""
    running = []

    def _start(eng=None, run=True, **cfg):
        cfg.setdefault("frames", ANY)
        cfg.setdefault("predictions", ANY)
        cfg.setdefault("poll_ms", 20)
        svc = Service(eng or engine, ServiceSettings(**cfg), context=ctx)
        svc.start()
        th = threading.Thread(target=svc.serve, daemon=True)
        r = Running(svc, th, ctx)
        running.append(r)
        if run:
            th.start()
        return r

    yield _start
    for r in running:
        r.service.stop()
        if r.thread.is_alive() or r.thread.ident is not None:
            r.thread.join(timeout=5)
            if r.thread.is_alive():
                pytest.fail("service thread did not stop within 5 s")
        else:
            r.service.close()


def collect(sub, until, timeout=RECV_TIMEOUT_S):
    """Receive messages until `until(messages)` is true; fail after `timeout` seconds."""
    out = []
    end = time.monotonic() + timeout
    while not until(out):
        left = end - time.monotonic()
        if left <= 0:
            pytest.fail(f"timed out after {timeout} s; got {out[-5:]}")
        msg = sub.recv(left)
        if msg is not None and not isinstance(msg, P.Hello):
            out.append(msg)
    return out


def preds(msgs):
    return [m for m in msgs if isinstance(m, P.Prediction)]


def errors(msgs):
    return [m for m in msgs if isinstance(m, P.ErrorReport)]


def has_pred(seq):
    return lambda msgs: any(isinstance(m, P.Prediction) and m.seq == seq for m in msgs)
