"""The live page's server side: settings, the feed's bounded history and rate bins, the
HTTP routes (static files only from a fixed list, no network resources), and a Feed fed by
a real service over loopback. The page itself runs in Chromium: tests/deploy/test_dashboard_page.py."""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from importlib import resources

import numpy as np
import pytest

from neurogrs.errors import ConfigError
from neurogrs.stream import protocol as P
from neurogrs.stream.dashboard import DashboardServer, DashboardSettings, Feed
from stream_helpers import RECV_TIMEOUT_S, N


def _pred(seq, t_ns, label=1, probs=(0.25, 0.75), late=False, skipped=0):
    return P.Prediction("s1", seq, t_ns - 2_000_000, t_ns - 1_000_000, t_ns - 500_000, label,
                        probs, "hash", late, skipped)


def test_settings_validate_and_round_trip():
    s = DashboardSettings(port=0, session="rec", history=500, max_points=100)
    assert DashboardSettings.from_dict(s.to_dict()) == s
    assert s.loopback and not DashboardSettings(host="0.0.0.0").loopback
    for bad, field in (({"port": 70000}, "port"), ({"history": 5}, "history"),
                       ({"max_points": 5}, "max_points"), ({"session": "a b"}, "session"),
                       ({"host": ""}, "host")):
        with pytest.raises(ConfigError, match=field):
            DashboardSettings(**bad)
    with pytest.raises(ConfigError, match="unknown dashboard setting"):
        DashboardSettings.from_dict({"prot": 1})


def test_feed_keeps_a_bounded_history_and_sends_the_newest():
    feed = Feed(DashboardSettings(history=100, max_points=10), labels=np.array([0, 1, 1]))
    t0 = time.time_ns()
    feed.add(P.Hello("hash", "numpy", N, ("left", "right"), 100_000_000), t0)
    for seq in range(150):
        feed.add(_pred(seq, t0 + seq * 1_000_000, label=1, late=seq == 3, skipped=seq % 2), t0 + seq * 1_000_000)
    feed.add(P.ErrorReport("s1", 9, "stale", "old"), t0)
    feed.add(P.EndOfStream("s1", 150, t0, 150), t0)
    st = feed.state(since=0)
    assert st["cursor"] == 150 and len(st["points"]) == 10
    assert [p[3] for p in st["points"]] == list(range(140, 150))  # the newest
    t, e2e, svc, seq, label, true, late, probs = st["points"][-1]
    assert e2e == pytest.approx(2.0) and svc == pytest.approx(0.5) and probs == [0.25, 0.75]
    assert true == [0, 1, 1][149 % 3] and label == 1
    assert feed.state(since=147)["points"][0][3] == 147
    assert feed.state(since=150)["points"] == []
    c = st["counts"]
    assert (c["predictions"], c["late"], c["skipped"], c["errors"], c["end_of_stream"]) == (150, 1, 75, {"stale": 1}, 1)
    assert c["scored"] == 150 and c["correct"] == sum(1 for s in range(150) if [0, 1, 1][s % 3] == 1)
    assert st["hello"]["labels"] == ["left", "right"] and st["hello"]["deadline_ms"] == 100.0
    assert json.loads(json.dumps(st)) == st


def test_rate_bins_per_second_leave_out_the_partial_first_second():
    feed = Feed(DashboardSettings())
    start = feed._started_s = int(time.time()) - 2  # a feed that started two seconds ago
    for sec, n in ((start, 5), (start + 1, 7)):
        for i in range(n):
            feed.add(_pred(i, sec * 1_000_000_000, skipped=1), sec * 1_000_000_000 + i)
    feed.add(P.ErrorReport("s1", 1, "stale", "x"), (start + 1) * 1_000_000_000)
    feed.add(_pred(99, (start + 60) * 1_000_000_000), (start + 60) * 1_000_000_000)  # a clock jump
    assert feed.state()["rate"] == [[start + 1, 7, 7, 1]]


@pytest.fixture
def page():
    servers = []

    def start(feed):
        srv = DashboardServer(feed).start()
        servers.append(srv)
        return srv

    yield start
    for s in servers:
        s.stop()


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, dict(r.headers), r.read()


def test_http_routes(page):
    srv = page(Feed(DashboardSettings(port=0)))
    assert srv.url.startswith("http://127.0.0.1:")
    status, headers, body = _get(srv.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert b"static/uPlot.iife.min.js" in body
    _, headers, js = _get(srv.url + "static/uPlot.iife.min.js")
    assert js.startswith(b"/*! https://github.com/leeoniya/uPlot") and "javascript" in headers["Content-Type"]
    _, _, lic = _get(srv.url + "static/uPlot.LICENSE")
    assert b"MIT License" in lic
    _, headers, state = _get(srv.url + "api/state?since=0")
    assert json.loads(state)["cursor"] == 0 and headers["Cache-Control"] == "no-store"
    for path, code in (("static/dashboard.py", 404), ("static/../dashboard.py", 404),
                       ("api/state?since=x", 400), ("nope", 404)):
        with pytest.raises(urllib.error.HTTPError) as exc:
            _get(srv.url + path)
        assert exc.value.code == code, path


def test_page_loads_nothing_from_the_network():
    """Works offline: every script, style and link of the page is served by the dashboard."""
    static = resources.files("neurogrs.stream").joinpath("static")
    html = static.joinpath("index.html").read_text()
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"[a-z]+:|//", ref), ref
        assert static.joinpath(ref.removeprefix("static/")).is_file(), ref
    js = static.joinpath("dashboard.js").read_text()
    assert not re.search(r"https?://|fetch\(\s*['\"`]//", js)


def test_page_port_taken_is_a_clear_error(page):
    from neurogrs.errors import TransportError

    srv = page(Feed(DashboardSettings(port=0)))
    port = int(srv.url.rsplit(":", 1)[1].strip("/"))
    with pytest.raises(TransportError, match="cannot bind the dashboard page"):
        DashboardServer(Feed(DashboardSettings(port=port)))


def test_feed_from_a_real_service(start_service, page):
    run = start_service(deadline_s=1.0, policy="all")
    feed = Feed(DashboardSettings(predictions=">" + run.endpoints["predictions"], session="s1",
                                  port=0), labels=np.array([1, 0]), context=run.ctx).start()
    try:
        srv = page(feed)
        end = time.monotonic() + RECV_TIMEOUT_S
        while feed.hello is None:  # greeted: the subscription is in place
            assert time.monotonic() < end, "no greeting from the service"
            time.sleep(0.02)
        fd = run.feeder("s1")
        for seq in range(20):
            fd.frame(seq)
        while feed.cursor < 20:
            assert time.monotonic() < end, f"only {feed.cursor} predictions reached the feed"
            time.sleep(0.02)
        st = json.loads(_get(srv.url + "api/state?since=0")[2])
        assert [p[3] for p in st["points"]] == list(range(20))
        assert all(p[1] >= p[2] >= 0 for p in st["points"])  # end to end includes the service's part
        assert [p[5] for p in st["points"]] == [[1, 0][s % 2] for s in range(20)]
        assert st["hello"]["n_inputs"] == N
    finally:
        feed.stop()


def test_cli_serves_the_page_and_stops_cleanly(tmp_path):
    """`neurogrs dashboard` as a process: ready line with the URL, the page served, SIGTERM
    exits 0 with its counters; a bad option is a clear error, exit non-zero."""
    from neurogrs.bench.process import EventProcess

    pr = EventProcess(["-m", "neurogrs", "dashboard", "--port", "0",
                       "--predictions", ">tcp://127.0.0.1:9"])  # nothing there: waits
    try:
        url = pr.event("ready")["url"]
        assert url.startswith("http://127.0.0.1:")
        assert b"neurogrs live" in _get(url)[2]
        assert pr.stop() == 0
        assert any('"event": "stopped"' in line for line in pr.err)
    finally:
        pr.kill()
    bad = EventProcess(["-m", "neurogrs", "dashboard", "--port", "70000"])
    assert bad.wait() != 0
    assert "port must be an integer in [0, 65535]" in "".join(bad.err)
