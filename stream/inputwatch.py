"""Keeps the service's frame socket connected: libzmq gives up on a connection it dropped
for a protocol error; this notices and reconnects.

A message larger than ZMQ_MAXMSGSIZE is a protocol error to libzmq: it drops the
connection and, on a connecting socket (``--frames '>tcp://...'``), never reconnects — the
input would stay silent for good. `InputWatch` reads the socket's monitor events: a
disconnect on a connecting socket that libzmq does not follow with its own retry (it
retries within the same millisecond after an ordinary disconnect, measured with libzmq
4.3.5) is such a drop; the watch then disconnects and connects the endpoint again on the
same socket, which keeps its options (CURVE included) and subscriptions. On a binding
socket libzmq drops only that peer's connection and the peer reconnects by itself; a
disconnect there cannot be told from a publisher closing, so it is only reported.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from neurogrs.stream.transport import Endpoint

__all__ = ["InputWatch", "RateLimitedLog", "DROPPED", "PEER_LEFT", "report_input_event"]

DROPPED = "dropped"  # a connecting socket's connection dropped for good; reconnected
PEER_LEFT = "peer_left"  # a peer of a binding socket disconnected (it may reconnect)
_RETRY_WAIT_MS = 50  # how long to wait for libzmq's own retry after a disconnect
RECONNECT_MIN_S = 0.25  # reconnects at most this often (a peer that fails every handshake)


class RateLimitedLog:
    """At most one record per `key` every `interval_s`; says how many were held back."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self.logger, self.interval_s = logger, interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, level: int, key: str, msg: str) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return
        held = self._held.pop(key, 0)
        self._last[key] = now
        self.logger.log(level, msg + (f" ({held} more like it not logged)" if held else ""))


class InputWatch:
    """Monitor events of one socket connected or bound to `endpoint`; `monitor` is the
    socket to poll, `handle()` reads what is queued and returns DROPPED / PEER_LEFT / None.

    libzmq keeps ONE monitor per socket: events of `forward_mask` (failed CURVE
    handshakes, say) are handed to `forward(event)` instead of being monitored twice."""

    def __init__(self, sock: Any, endpoint: Endpoint, forward_mask: int = 0,
                 forward: Callable[[dict], None] | None = None) -> None:
        import zmq

        self._zmq = zmq
        self.sock, self.endpoint = sock, endpoint
        self._forward_mask, self._forward = (forward_mask, forward) if forward else (0, None)
        self._retried = zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_CONNECT_DELAYED | zmq.EVENT_CONNECTED
        self.monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | self._retried
                                               | self._forward_mask)
        self.monitor.linger = 0
        self._last_reconnect = float("-inf")
        self.pending = False  # a reconnect is owed, held back by RECONNECT_MIN_S

    def _events(self, timeout_ms: int = 0) -> list[int]:
        from zmq.utils.monitor import recv_monitor_message

        out = []
        while self.monitor.poll(timeout_ms):
            ev = recv_monitor_message(self.monitor)
            if ev["event"] & self._forward_mask:
                self._forward(ev)
            else:
                out.append(ev["event"])
            timeout_ms = 0
        return out

    def handle(self) -> str | None:
        zmq = self._zmq
        events = self._events()
        if not any(e == zmq.EVENT_DISCONNECTED for e in events):
            return None
        if self.endpoint.action == "bind":
            return PEER_LEFT
        # the last disconnect must be followed by libzmq's own retry, else it gave up
        last = max(i for i, e in enumerate(events) if e == zmq.EVENT_DISCONNECTED)
        if any(e & self._retried for e in events[last + 1:]) or any(
                e & self._retried for e in self._events(_RETRY_WAIT_MS)):
            return None
        if time.monotonic() - self._last_reconnect < RECONNECT_MIN_S:
            self.pending = True  # the owner calls retry() on its next wake-up
            return None
        self.reconnect()
        return DROPPED

    def retry(self) -> str | None:
        """The reconnect held back by RECONNECT_MIN_S, once it is due: DROPPED, else None."""
        if not self.pending or time.monotonic() - self._last_reconnect < RECONNECT_MIN_S:
            return None
        self.reconnect()
        return DROPPED

    def reconnect(self) -> None:
        zmq = self._zmq
        self.pending = False
        self._last_reconnect = time.monotonic()
        try:
            self.sock.disconnect(self.endpoint.address)
        except zmq.ZMQError:
            pass  # libzmq already forgot the endpoint
        self.sock.connect(self.endpoint.address)

    def close(self) -> None:
        try:
            self.sock.disable_monitor()
        except self._zmq.ZMQError:
            pass
        self.monitor.close(linger=0)


def report_input_event(what: str | None, metrics: Any, warn: RateLimitedLog, address: str,
                       receive_limit: int) -> None:
    """Count and log what the frame socket's watch reports (DROPPED: reconnected after
    libzmq gave up; PEER_LEFT: a publisher went away)."""
    if what == DROPPED:
        metrics.oversized_messages.value += 1
        metrics.input_reconnects.value += 1
        warn(logging.WARNING, "dropped",
             f"libzmq dropped the frame connection to {address} (a message over the "
             f"{receive_limit}-byte receive limit, or another protocol error) and would not "
             "reconnect: reconnected")
    elif what == PEER_LEFT:
        warn(logging.INFO, "peer_left", "a frame publisher disconnected (closed, or sent a "
                                        "message over the receive limit)")
