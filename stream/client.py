"""The closed-loop client: receive predictions (and errors, end-of-stream) from a service.

    for pred in subscribe(session="mouse1", timeout=5):  # default: the local service
        act_on(pred.label, pred.late)
"""
from __future__ import annotations

import time
from typing import Any, Iterator

from neurogrs.errors import TransportTimeout
from neurogrs.stream import protocol as P
from neurogrs.stream.transport import CLIENT_PREDICTIONS, parse_endpoint, two_part_io

__all__ = ["Subscriber", "subscribe", "DEFAULT_PREDICTIONS"]

DEFAULT_PREDICTIONS = CLIENT_PREDICTIONS


class Subscriber:
    """A SUB socket on a service's prediction endpoint; `recv()` returns decoded messages.

    `session=None` receives every session. Messages a v1 decoder cannot read are counted in
    `self.undecodable` (never raised: the client keeps going). `received_ns` of the last
    message is kept for latency accounting.
    """

    def __init__(self, endpoint: str = DEFAULT_PREDICTIONS, session: str | None = None, *,
                 curve_dir: str | None = None, context: Any = None, rcvhwm: int = 100_000) -> None:
        import zmq

        if session is not None:
            P.check_session_name(session)
        self.session = session
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.linger = 0
        self._sock.rcvhwm = rcvhwm
        self._sock.setsockopt(zmq.MAXMSGSIZE, 1 << 20)
        self.undecodable = 0
        self.received_ns = 0
        self.hello: P.Hello | None = None
        try:
            if curve_dir is not None:
                from neurogrs.stream import keys

                keys.configure_client(self._sock, curve_dir)
            if session is None:
                topics = [P.PRED_PREFIX, P.ERROR_PREFIX, P.END_PREFIX]
            else:
                topics = [P.topic(p, session) for p in (P.PRED_PREFIX, P.ERROR_PREFIX, P.END_PREFIX)]
            for t in topics + [P.HELLO_TOPIC]:
                self._sock.subscribe(t)
            self.endpoint = parse_endpoint(endpoint, "connect").apply(self._sock)
            self._recv_nowait = two_part_io(self._sock).recv_nowait
            self._poll_in = [(self._sock, zmq.POLLIN)]
        except BaseException:
            self.close()
            raise

    def recv(self, timeout_s: float | None = None) -> "P.Prediction | P.ErrorReport | P.EndOfStream | P.Hello | None":
        """Next decodable message, or None after `timeout_s` seconds without one."""
        import zmq

        recv = self._recv_nowait
        poll_in = self._poll_in
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            # zmq_poll first (returns at once when a message is queued): a recv that finds
            # nothing costs more (zmq.Again) than the poll, and pyzmq's Socket.poll builds
            # a Poller per call
            wait = -1 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not zmq.zmq_poll(poll_in, wait):
                return None
            parts = recv()
            if parts is None:
                continue
            self.received_ns = time.time_ns()
            try:
                msg = P.decode_message(parts)
            except P.BadMessage:
                self.undecodable += 1
                continue
            if self.session is not None and getattr(msg, "session", self.session) != self.session:
                continue  # prefix artefact: pred.ab when subscribed to pred.a
            if isinstance(msg, P.Hello):
                self.hello = msg
            return msg

    def wait_hello(self, timeout_s: float) -> P.Hello:
        """Wait until the service greets this subscription: from then on nothing is missed.
        Raises TransportTimeout after `timeout_s` without a greeting."""
        end = time.monotonic() + timeout_s
        while self.hello is None:
            left = end - time.monotonic()
            if left <= 0:
                raise TransportTimeout(f"no service answered on {self.endpoint} within {timeout_s:g} s")
            self.recv(left)  # call before traffic starts: other messages here are skipped
        return self.hello

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._own_ctx and self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscribe(endpoint: str = DEFAULT_PREDICTIONS, session: str | None = None,
              timeout: float | None = None, *, errors: bool = False,
              curve_dir: str | None = None, context: Any = None) -> Iterator[P.Prediction | P.ErrorReport]:
    """Yield predictions (and ErrorReports if `errors`) as they arrive.

    Ends when the stream of `session` ends (end-of-stream), or after `timeout` seconds
    without a message (None: wait forever).
    """
    with Subscriber(endpoint, session, curve_dir=curve_dir, context=context) as sub:
        while True:
            msg = sub.recv(timeout)
            if msg is None:
                return
            if isinstance(msg, P.Prediction) or (errors and isinstance(msg, P.ErrorReport)):
                yield msg
            elif isinstance(msg, P.EndOfStream) and session is not None:
                return
