"""The live page in a real browser: `neurogrs serve` + `replay` + `dashboard` on loopback,
headless Chromium loads the page while frames flow; the DOM shows the plots were updated
with data, and the screenshot has the plots' lines in it."""
from __future__ import annotations

import json
import re
import struct
import subprocess
import time
import urllib.request
import zlib

import pytest

from deploy_helpers import require_tool

pytestmark = pytest.mark.timeout(120)

BLUE, ORANGE, BLACK = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0, 0, 0)  # dashboard.js strokes


def chromium(url, out_dir, *mode, budget_ms=4000):
    exe = require_tool("chromium")
    res = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", "--window-size=1280,1000",
         f"--user-data-dir={out_dir / 'chromium-profile'}", f"--virtual-time-budget={budget_ms}",
         *mode, url], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB/RGBA non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def near(px, colour, tol=40):
    return all(abs(p - q) <= tol for p, q in zip(px, colour))


def test_live_page_plots_data_in_headless_chromium(procs, artifact_dir, session_file, tmp_path):
    require_tool("chromium")
    srv = procs("serve", artifact_dir, "--engine", "numpy", "--frames", "@tcp://127.0.0.1:*",
                "--predictions", "@tcp://127.0.0.1:*", "--metrics-port", "-1")
    ready = srv.event("ready")
    dash = procs("dashboard", "--predictions", ">" + ready["predictions"], "--port", "0",
                 "--session", session_file, "--session-name", "rec")
    url = dash.event("ready")["url"]
    assert url.startswith("http://127.0.0.1:")
    rep = procs("replay", session_file, "--frames", ">" + ready["frames"], "--loop",
                "--session-name", "rec", "--no-progress")
    # frames reach the dashboard before the browser starts (bounded wait)
    end = time.monotonic() + 30
    while json.loads(urllib.request.urlopen(url + "api/state?since=0", timeout=5).read())["cursor"] < 50:
        assert time.monotonic() < end, "no predictions reached the dashboard in 30 s"
        time.sleep(0.2)

    dom = chromium(url, tmp_path, "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert int(attrs["updates"]) >= 2, body          # polled and redrawn more than once
    assert int(attrs["plotted"]) > 0, body           # points in the plots
    assert int(attrs["predictions"]) > int(attrs["first-predictions"]), body  # live, growing
    assert 'id="status" class="ok"' in dom
    assert re.search(r'id="engine">numpy<', dom) and re.search(r'id="accuracy">\d', dom)
    assert dom.count("<canvas") == 3                 # three uPlot charts

    shot = tmp_path / "dashboard.png"
    chromium(url, tmp_path, f"--screenshot={shot}")
    w, h, rows = png_pixels(shot)
    assert (w, h) == (1280, 1000)
    # (black within 10: the page's text is #222; an empty page has no such pixel)
    counts = {name: sum(near(px, col, tol) for row in rows for px in row)
              for name, col, tol in (("blue", BLUE, 40), ("orange", ORANGE, 40), ("black", BLACK, 10))}
    # the end-to-end latency and P(class 0) lines (blue), P(class 1) (orange), the true
    # label (black steps): far more than the legend's small colour boxes
    assert counts["blue"] > 1500 and counts["orange"] > 500 and counts["black"] > 1500, counts

    rep.stop()
    assert dash.stop() == 0
    assert srv.stop() == 0
