"""CURVE on the service's sockets: who may connect, and what happens to those who may not.

    guard = CurveGuard.start(context, curve_dir, registry)   # before the sockets exist
    keys.configure_server(sock, curve_dir); guard.watch(sock)  # CURVE servers, before bind
    ...
    guard.stop()                                             # after the sockets are closed

- Peers are authorised by key alone: a client whose public key is in
  ``DIR/authorized_clients/`` is admitted from any address the sockets are bound to
  (tcp on any interface, ipc://); there is no address allow-list (one admitting only
  127.0.0.1 refused authorised peers over ipc:// and from other hosts).
- Every failed handshake on a watched socket (an unauthorised key, a peer without CURVE or
  with the wrong server key) is counted in ``neurogrs_curve_handshake_failures_total``
  (libzmq's socket monitor, EVENT_HANDSHAKE_FAILED_*; a separate thread, nothing on the
  frame path) and logged on the ``neurogrs.stream.auth`` logger: the first at once, then
  at most one summary line per `log_interval_s` (a peer retrying every 100 ms must not
  flood the log). The refused key itself is logged at DEBUG by the ZAP handler
  (``neurogrs.stream.auth.zap``).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from neurogrs.stream import keys
from neurogrs.stream.metrics import curve_handshake_failures

__all__ = ["CurveGuard", "LOG_INTERVAL_S", "handshake_failure_mask"]

LOG_INTERVAL_S = 10.0  # at most one log line per interval after the first failure
POLL_MS = 100  # the monitor thread sees a stop request within this

log = logging.getLogger("neurogrs.stream.auth")


def _failure_events() -> dict[int, str]:
    import zmq

    return {zmq.EVENT_HANDSHAKE_FAILED_AUTH: "client key not authorised",
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol error (no CURVE, or a wrong "
                                                 "server key)",
            zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "no detail"}


def handshake_failure_mask() -> int:
    """The monitor events that are failed handshakes (for a socket that another watcher
    monitors: libzmq keeps one monitor per socket, so that watcher forwards them here)."""
    mask = 0
    for event in _failure_events():
        mask |= event
    return mask


class _RateLimitedLog:
    """Log the first failure, then summarise the others at most once per interval."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last_log = -float("inf")
        self._held = 0
        self._last_what = ""

    def failure(self, what: str, now: float) -> None:
        self._last_what = what
        if now - self._last_log >= self.interval_s and not self._held:
            log.warning("CURVE handshake failed: %s", what)
            self._last_log = now
        else:
            self._held += 1
            self.flush(now)

    def flush(self, now: float, final: bool = False) -> None:
        if self._held and (final or now - self._last_log >= self.interval_s):
            log.warning("CURVE handshake failed %d more times in the last %.0f s (last: %s)",
                        self._held, now - self._last_log, self._last_what)
            self._held = 0
            self._last_log = now


class CurveGuard:
    """A ZAP authenticator admitting the authorised keys, and a thread counting failures."""

    def __init__(self, authenticator: Any, counter: Any, log_interval_s: float) -> None:
        self._auth = authenticator
        self._counter = counter
        self._log = _RateLimitedLog(log_interval_s)
        self._pending: list[Any] = []  # monitor sockets not yet taken by the thread
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._names = _failure_events()
        self._log_lock = threading.Lock()  # failures come from the thread and from forwarders

    @classmethod
    def start(cls, context: Any, curve_dir: "str | os.PathLike", registry: Any,
              log_interval_s: float = LOG_INTERVAL_S) -> "CurveGuard":
        """Start ZAP for `context`: CURVE clients are admitted by key, from any address.
        Raises ConfigError for missing keys (before anything is bound)."""
        from zmq.auth.thread import ThreadAuthenticator

        allowed = keys.authorized_dir(curve_dir)
        keys.server_keys(curve_dir)  # fail early on missing keys
        auth = ThreadAuthenticator(context, log=logging.getLogger("neurogrs.stream.auth.zap"))
        auth.start()
        auth.configure_curve(domain="*", location=str(allowed))
        return cls(auth, curve_handshake_failures(registry), log_interval_s)

    def watch(self, *sockets: Any) -> None:
        """Count and log failed handshakes on `sockets` (CURVE servers; call before they
        bind or connect). May be called again for a socket created later (a recreated input
        socket, say); the monitor of a closed socket is dropped by the counting thread."""
        import zmq

        mask = zmq.EVENT_MONITOR_STOPPED | handshake_failure_mask()
        monitors = [s.get_monitor_socket(mask) for s in sockets]
        with self._lock:  # handed to the counting thread, which alone uses them from now on
            self._pending.extend(monitors)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="neurogrs-curve-monitor",
                                            daemon=True)
            self._thread.start()

    def failure(self, event: dict) -> None:
        """Count and log one failed-handshake monitor event (`recv_monitor_message` dict);
        thread-safe, so a socket's own monitor reader may forward its events here."""
        self._counter.inc()
        endpoint = event["endpoint"].decode("utf-8", "replace")
        with self._log_lock:
            self._log.failure(f"{self._names[event['event']]} (code {event['value']}) on "
                              f"{endpoint}", time.monotonic())

    def _run(self) -> None:
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        names = self._names
        monitors: list[Any] = []
        try:
            while not self._stop.is_set():
                with self._log_lock:
                    self._log.flush(time.monotonic())
                with self._lock:
                    monitors += self._pending
                    self._pending.clear()
                if not monitors:  # every watched socket closed
                    self._stop.wait(POLL_MS / 1000)
                    continue
                for sock, _ in zmq.zmq_poll([(m, zmq.POLLIN) for m in monitors], POLL_MS):
                    ev = recv_monitor_message(sock)
                    if ev["event"] == zmq.EVENT_MONITOR_STOPPED:  # its socket was closed
                        monitors.remove(sock)
                        sock.close(linger=0)
                    elif ev["event"] in names:
                        self.failure(ev)
            with self._log_lock:
                self._log.flush(time.monotonic(), final=True)
        finally:
            with self._lock:
                monitors += self._pending
                self._pending.clear()
            for m in monitors:
                m.close(linger=0)

    def stop(self) -> None:
        """Stop counting and stop the authenticator (after the watched sockets are closed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
