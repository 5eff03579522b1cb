"""`neurogrs dashboard`: a live page for a lab without Grafana.

A `Feed` subscribes to a service's predictions (`neurogrs.stream.client.Subscriber`, in a
thread) and keeps a bounded history; `DashboardServer` serves one page on loopback (stdlib
`http.server`, in a thread) that polls `/api/state?since=CURSOR` and draws latency,
frame-rate and prediction plots with uPlot, vendored in `stream/static/` with its licence
(the page loads nothing from the network: it works offline).

    /                   the page (static/index.html)
    /static/NAME        the page's scripts and styles (a fixed list)
    /api/state?since=N  JSON: the service's greeting, counters, points after cursor N
                        (at most `max_points`, the newest), per-second rate bins
"""
from __future__ import annotations

import collections
import http.server
import ipaddress
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from neurogrs.errors import ConfigError
from neurogrs.settings import SettingsDict
from neurogrs.stream import protocol as P
from neurogrs.stream.client import Subscriber
from neurogrs.stream.transport import CLIENT_PREDICTIONS

__all__ = ["DashboardSettings", "Feed", "DashboardServer", "DEFAULT_PORT", "run"]

DEFAULT_PORT = 8765
RATE_BINS = 300  # seconds of per-second rate bins kept (and sent: ~300 x 4 numbers)
_STATIC = {  # name -> content type: nothing else is served
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "uPlot.LICENSE": "text/plain; charset=utf-8",
}


@dataclass
class DashboardSettings(SettingsDict):
    predictions: str = CLIENT_PREDICTIONS  # the service's prediction endpoint (> connects)
    session: str | None = None  # follow this session only (None: every session)
    host: str = "127.0.0.1"  # where the page listens
    port: int = DEFAULT_PORT  # 0: any free port
    history: int = 20_000  # predictions kept for the page (older ones are dropped)
    max_points: int = 2_000  # points sent per poll at most (the newest)
    curve_dir: str | None = None

    def __post_init__(self) -> None:
        if self.session is not None:
            P.check_session_name(self.session)
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be an integer in [0, 65535], got {self.port!r}")
        if not isinstance(self.history, int) or not 100 <= self.history <= 1_000_000:
            raise ConfigError(f"history must be an integer in [100, 1000000], got {self.history!r}")
        if not isinstance(self.max_points, int) or not 10 <= self.max_points <= self.history:
            raise ConfigError(f"max_points must be an integer in [10, history={self.history}], "
                              f"got {self.max_points!r}")
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host must be an address, got {self.host!r}")

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


class Feed:
    """Predictions received from a service, kept for the page (thread-safe).

    A point is `[t, e2e_ms, service_ms, seq, label, true_label, late, probs]`: t = time
    received (unix s), e2e = t_src -> received by this client, service = receipt -> publish
    on the service's clock, true_label from the recorded `labels` (`labels[seq % T]`, the
    replay convention) or None."""

    def __init__(self, settings: DashboardSettings, labels: np.ndarray | None = None,
                 context: Any = None) -> None:
        self.settings = settings
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self._context = context
        self._lock = threading.Lock()
        self._points: collections.deque = collections.deque(maxlen=settings.history)
        self._bins: collections.OrderedDict[int, list[int]] = collections.OrderedDict()
        self.cursor = 0  # predictions received so far (the next point's index)
        self._started_s = int(time.time())  # its rate bin is partial: not shown
        self.hello: P.Hello | None = None
        self.counts = {"predictions": 0, "late": 0, "skipped": 0, "errors": {},
                       "end_of_stream": 0, "scored": 0, "correct": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sub: Subscriber | None = None

    # ------------------------------------------------------------------ receiving
    def start(self) -> "Feed":
        # the socket is made here, used and closed by the thread (zmq sockets are not
        # thread-safe: one owner)
        self._sub = Subscriber(self.settings.predictions, self.settings.session,
                               curve_dir=self.settings.curve_dir, context=self._context)
        self._thread = threading.Thread(target=self._run, name="dashboard-feed", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        sub = self._sub
        try:
            while not self._stop.is_set():
                msg = sub.recv(0.2)
                if msg is not None:
                    self.add(msg, sub.received_ns)
        finally:
            sub.close()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def add(self, msg: Any, received_ns: int) -> None:
        """Record one decoded message (the receiving thread calls this; tests may too)."""
        sec = received_ns // 1_000_000_000
        with self._lock:
            if isinstance(msg, P.Hello):
                self.hello = msg
                return
            c = self.counts
            if isinstance(msg, P.Prediction):
                true = None
                if self.labels is not None and len(self.labels):
                    true = int(self.labels[msg.seq % len(self.labels)])
                    c["scored"] += 1
                    c["correct"] += int(true == msg.label)
                self._points.append([
                    received_ns / 1e9, (received_ns - msg.t_src_ns) / 1e6,
                    (msg.t_pub_ns - msg.t_recv_ns) / 1e6, msg.seq, msg.label, true,
                    bool(msg.late), [round(float(p), 4) for p in msg.probs]])
                self.cursor += 1
                c["predictions"] += 1
                c["late"] += bool(msg.late)
                c["skipped"] += msg.skipped
                self._bin(sec)[0] += 1
                self._bin(sec)[1] += msg.skipped
            elif isinstance(msg, P.ErrorReport):
                c["errors"][msg.reason] = c["errors"].get(msg.reason, 0) + 1
                self._bin(sec)[2] += 1
            elif isinstance(msg, P.EndOfStream):
                c["end_of_stream"] += 1

    def _bin(self, sec: int) -> list[int]:
        b = self._bins.get(sec)
        if b is None:
            b = self._bins[sec] = [0, 0, 0]
            while len(self._bins) > RATE_BINS:
                self._bins.popitem(last=False)
        return b

    # ------------------------------------------------------------------ the page's view
    def state(self, since: int = 0) -> dict[str, Any]:
        """What the page polls: points after cursor `since` (the newest `max_points`)."""
        with self._lock:
            new = min(max(self.cursor - since, 0), len(self._points), self.settings.max_points)
            points = list(self._points)[len(self._points) - new:] if new else []
            hello = None if self.hello is None else {
                "model": self.hello.model, "engine": self.hello.engine,
                "labels": list(self.hello.labels), "n_inputs": self.hello.n_inputs,
                "deadline_ms": self.hello.deadline_ns / 1e6}
            counts = json.loads(json.dumps(self.counts))  # a copy
            now = int(time.time())
            # sorted: a clock stepped back would otherwise put a bin out of order
            rate = sorted([s, *b] for s, b in self._bins.items() if self._started_s < s <= now)
            cursor = self.cursor
        return {"cursor": cursor, "points": points, "hello": hello, "counts": counts,
                "rate": rate, "session": self.settings.session,
                "labels_known": self.labels is not None}


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "_HTTPServer"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urllib.parse.urlsplit(self.path)
        if url.path in ("/", "/index.html"):
            self._static("index.html")
        elif url.path.startswith("/static/") and url.path[8:] in _STATIC:
            self._static(url.path[8:])
        elif url.path == "/api/state":
            q = urllib.parse.parse_qs(url.query)
            try:
                since = int(q.get("since", ["0"])[0])
            except ValueError:
                self.send_error(400, "since must be an integer")
                return
            body = json.dumps(self.server.feed.state(since)).encode()
            self._send(200, "application/json", body, cache=False)
        else:
            self.send_error(404)

    def _static(self, name: str) -> None:
        body = resources.files("neurogrs.stream").joinpath("static", name).read_bytes()
        self._send(200, _STATIC[name], body, cache=True)

    def _send(self, code: int, ctype: str, body: bytes, cache: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=300" if cache else "no-store")
        # everything comes from this server: no CDN, works offline
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # one line per poll would flood the terminal


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    feed: Feed


class DashboardServer:
    """The page's HTTP server, in a thread; `url` once started."""

    def __init__(self, feed: Feed) -> None:
        s = feed.settings
        try:
            self._httpd = _HTTPServer((s.host, s.port), _Handler)
        except OSError as exc:
            from neurogrs.errors import TransportError

            raise TransportError(f"cannot bind the dashboard page on {s.host}:{s.port}: {exc}") from exc
        self._httpd.feed = feed
        host = s.host if ":" not in s.host else f"[{s.host}]"
        self.url = f"http://{host}:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.2}, daemon=True)

    def start(self) -> "DashboardServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()



def run(settings: DashboardSettings, labels: np.ndarray | None = None) -> int:
    """The `neurogrs dashboard` command: serve until SIGTERM / SIGINT, then exit 0.
    Prints one JSON `ready` line (with the page's URL) on stdout."""
    import signal
    import sys
    import warnings

    if not settings.loopback:
        warnings.warn(f"the dashboard listens on {settings.host}: anyone who reaches it sees "
                      "the predictions (no authentication)", stacklevel=2)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    feed = Feed(settings, labels)
    server = DashboardServer(feed)
    feed.start()
    server.start()
    try:
        print(json.dumps({"event": "ready", "url": server.url,
                          "predictions": settings.predictions, "session": settings.session}),
              flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        feed.stop()
    print(json.dumps({"event": "stopped", **feed.state(feed.cursor)["counts"]}),
          file=sys.stderr, flush=True)
    return 0
