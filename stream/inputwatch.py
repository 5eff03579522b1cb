"""Keeps the service's frame socket connected and says when libzmq dropped a connection
for an oversized message.

A message larger than ZMQ_MAXMSGSIZE is a protocol error to libzmq: it drops the
connection (monitor event DISCONNECTED, the same event as a peer closing: libzmq 4.3.5
gives no reason). `InputWatch` reads the socket's monitor events.

Connecting socket (``--frames '>tcp://...'``): libzmq never reconnects after a protocol
error, so the input would stay silent for good. A disconnect that libzmq does not follow
with its own retry (it retries within the same millisecond after an ordinary disconnect,
measured with libzmq 4.3.5) is such a drop; the watch disconnects and connects the
endpoint again on the same socket, which keeps its options (CURVE included) and
subscriptions (DROPPED).

Binding socket: the publisher reconnects by itself; what is left is to tell the drop from
a publisher leaving. The TCP connection says it: a publisher that leaves closes it first
(libzmq reads its end of file), while a connection libzmq drops for a protocol error is
still open on the publisher's side. The watch keeps a duplicate of each accepted
connection's descriptor (`_Peers`; the duplicate keeps the kernel socket, libzmq's
closing its own descriptor does not end it) and, at the disconnect, peeks at it: end of
file or a reset → the publisher left (PEER_LEFT); still open → libzmq dropped it
(OVERSIZED; the only protocol error a SUB socket raises after a handshake: a message over
the receive limit or a malformed ZMTP frame). Closing the duplicate then ends the
connection as libzmq meant to (the publisher sees a reset and reconnects). A disconnect
right after a failed handshake is neither (it is counted by stream/auth.py).
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, Callable

from neurogrs.stream.transport import Endpoint

__all__ = ["InputWatch", "RateLimitedLog", "DROPPED", "OVERSIZED", "PEER_LEFT", "MAX_HELD",
           "held_limit", "describe", "report_input_event"]

DROPPED = "dropped"  # a connecting socket's connection dropped for good; reconnected
OVERSIZED = "oversized"  # a binding socket's connection dropped by libzmq (peer still there)
PEER_LEFT = "peer_left"  # a peer of a binding socket closed its connection
_RETRY_WAIT_MS = 50  # how long to wait for libzmq's own retry after a disconnect
RECONNECT_MIN_S = 0.25  # reconnects at most this often (a peer that fails every handshake)
MAX_HELD = 1024  # connections of a binding socket watched at most (one descriptor each)
FD_SHARE = 4  # ... and at most this fraction of the process's descriptor limit (1/4)


def held_limit() -> int:
    """How many connections to watch: MAX_HELD, or a quarter of the soft RLIMIT_NOFILE if
    that is lower (the duplicates must not starve libzmq of descriptors: 256 at the usual
    soft limit of 1024)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_HELD if soft == resource.RLIM_INFINITY else max(1, min(MAX_HELD, soft // FD_SHARE))


def describe(what: str, address: str, limit: int) -> tuple[int, str, str]:
    """(log level, rate-limit key, message) for what `InputWatch.handle` reported about the
    socket at `address` whose receive limit is `limit` bytes."""
    if what == DROPPED:
        return (logging.WARNING, what, f"libzmq dropped the frame connection to {address} (a "
                f"message over the {limit}-byte receive limit, or another protocol error) and "
                "would not reconnect: reconnected")
    if what == OVERSIZED:
        return (logging.WARNING, what, f"libzmq dropped a frame publisher's connection to "
                f"{address} (a message over the {limit}-byte receive limit, or a malformed "
                "ZMTP frame); the publisher reconnects by itself")
    return logging.INFO, what, "a frame publisher disconnected"


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


class _Peers:
    """Duplicates of the descriptors of a binding socket's accepted connections, keyed by
    libzmq's descriptor number (at most `limit`): at a disconnect, who closed it."""

    def __init__(self, limit: int | None = None) -> None:
        self._limit = held_limit() if limit is None else limit
        self._held: dict[int, socket.socket] = {}

    def __len__(self) -> int:
        return len(self._held)

    def accepted(self, fd: int) -> None:
        self._drop(fd)
        if len(self._held) >= self._limit:
            return  # its disconnect will read as PEER_LEFT: logged, not counted
        try:
            dup = os.dup(fd)
        except OSError:
            return  # already closed by libzmq
        try:
            # never change its blocking mode: that flag is shared with libzmq's descriptor
            self._held[fd] = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)  # not a socket (any more)

    def disconnected(self, fd: int, handshake_failed: bool) -> str | None:
        """OVERSIZED if the connection is still open on the peer's side (libzmq dropped
        it), PEER_LEFT if the peer closed it or it was not watched, None after a failed
        handshake. Closing the duplicate ends the connection."""
        held = self._held.pop(fd, None)
        if held is None:
            return None if handshake_failed else PEER_LEFT
        with held:
            if handshake_failed:
                return None
            try:
                pending = held.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                return OVERSIZED  # open, nothing unread: the peer did not close it
            except OSError:
                return PEER_LEFT  # reset by the peer
            return OVERSIZED if pending else PEER_LEFT  # b"": the peer's end of file

    def sweep(self) -> None:
        """Let go of connections libzmq closed without a disconnect event reaching us (a
        full monitor queue): its descriptor is gone or now names another file."""
        for fd, held in list(self._held.items()):
            try:
                same = os.fstat(fd).st_ino == os.fstat(held.fileno()).st_ino
            except OSError:
                same = False
            if not same:
                self._drop(fd)

    def _drop(self, fd: int) -> None:
        held = self._held.pop(fd, None)
        if held is not None:
            held.close()

    def close(self) -> None:
        for fd in list(self._held):
            self._drop(fd)


class InputWatch:
    """Monitor events of one socket connected or bound to `endpoint`; `monitor` is the
    socket to poll, `handle()` reads what is queued and returns what happened (DROPPED,
    OVERSIZED, PEER_LEFT, once per event).

    libzmq keeps ONE monitor per socket: events of `forward_mask` (failed CURVE
    handshakes, say) are handed to `forward(event)` instead of being monitored twice."""

    def __init__(self, sock: Any, endpoint: Endpoint, forward_mask: int = 0,
                 forward: Callable[[dict], None] | None = None) -> None:
        import zmq

        self._zmq = zmq
        self.sock, self.endpoint = sock, endpoint
        self._forward_mask, self._forward = (forward_mask, forward) if forward else (0, None)
        self._retried = zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_CONNECT_DELAYED | zmq.EVENT_CONNECTED
        self._failed = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                        | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        self._peers = _Peers() if endpoint.action == "bind" else None
        mask = zmq.EVENT_DISCONNECTED | self._forward_mask
        mask |= (zmq.EVENT_ACCEPTED | self._failed) if self._peers is not None else self._retried
        self.monitor = sock.get_monitor_socket(mask)
        self.monitor.linger = 0
        self._last_event = 0  # the event before a batch's first (a failed handshake?)
        self._last_reconnect = float("-inf")
        self.pending = False  # a reconnect is owed, held back by RECONNECT_MIN_S

    def _events(self, timeout_ms: int = 0) -> list[tuple[int, int]]:
        """(event, value) of every queued monitor event, forwarding those asked for."""
        from zmq.utils.monitor import recv_monitor_message

        out = []
        while self.monitor.poll(timeout_ms):
            ev = recv_monitor_message(self.monitor)
            if ev["event"] & self._forward_mask:
                self._forward(ev)
            out.append((ev["event"], ev["value"]))
            timeout_ms = 0
        return out

    def handle(self) -> list[str]:
        events = self._events()
        if self._peers is not None:
            return self._handle_bound(events)
        zmq = self._zmq
        if not any(e == zmq.EVENT_DISCONNECTED for e, _ in events):
            return []
        # the last disconnect must be followed by libzmq's own retry, else it gave up
        last = max(i for i, (e, _) in enumerate(events) if e == zmq.EVENT_DISCONNECTED)
        if any(e & self._retried for e, _ in events[last + 1:]) or any(
                e & self._retried for e, _ in self._events(_RETRY_WAIT_MS)):
            return []
        if time.monotonic() - self._last_reconnect < RECONNECT_MIN_S:
            self.pending = True  # the owner calls retry() on its next wake-up
            return []
        self.reconnect()
        return [DROPPED]

    def _handle_bound(self, events: list[tuple[int, int]]) -> list[str]:
        zmq, peers = self._zmq, self._peers
        out = []
        before = self._last_event
        for i, (event, value) in enumerate(events):
            if event == zmq.EVENT_ACCEPTED:
                # gone again within this batch: its descriptor may already name another
                # connection, so it is not watched (its disconnect reads as PEER_LEFT)
                if (zmq.EVENT_DISCONNECTED, value) not in events[i + 1:]:
                    peers.accepted(value)
            elif event == zmq.EVENT_DISCONNECTED:
                what = peers.disconnected(value, bool(before & self._failed))
                if what is not None:
                    out.append(what)
            before = event
        self._last_event = before
        return out

    @property
    def watched(self) -> int:
        """Connections of a binding socket watched now (descriptors held)."""
        return len(self._peers) if self._peers is not None else 0

    def sweep(self) -> None:
        """Housekeeping (binding socket): forget connections closed without an event."""
        if self._peers is not None:
            self._peers.sweep()

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
        if self._peers is not None:
            self._peers.close()


def report_input_event(what: str | None, metrics: Any, warn: "RateLimitedLog", address: str,
                       receive_limit: int) -> None:
    """Count and log what the frame socket's watch reports (DROPPED: reconnected after
    libzmq gave up; OVERSIZED: a binding socket's connection dropped by libzmq while the
    publisher was still there; PEER_LEFT: a publisher closed its connection)."""
    if what in (DROPPED, OVERSIZED):
        metrics.oversized_messages.value += 1
    if what == DROPPED:
        metrics.input_reconnects.value += 1
    if what is not None:
        warn(*describe(what, address, receive_limit))
