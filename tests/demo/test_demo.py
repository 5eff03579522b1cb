"""`neurogrs demo` end to end on tiny settings (the real pipeline, C compiler, service,
replay and listener; only the sizes are small): the table, the accounting identity,
report.html with every plot embedded as a PNG that decodes, the page rendered by headless
Chromium, and the same on the real recorded session (`--session`)."""
from __future__ import annotations

import base64
import io
import json
import re
import subprocess

import pytest
from PIL import Image

from neurogrs.cli import main
from neurogrs.demo import DemoSettings
from neurogrs.errors import ConfigError

pytestmark = [pytest.mark.timeout(240)]

TINY = ["--epochs", "5", "--retrain-epochs", "1", "--timing-frames", "200"]
NOISE = re.compile(r"oneDNN|absl|tensorflow|cuda|Traceback|UserWarning|DeprecationWarning|"
                   r"RuntimeWarning|warnings.warn", re.I)


def _embedded_pngs(html: str) -> list[Image.Image]:
    images = []
    for b64 in re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html):
        raw = base64.b64decode(b64, validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        img = Image.open(io.BytesIO(raw))
        img.load()  # decodes every pixel (a truncated file fails here)
        images.append(img)
    return images


def _check_run(out, output: str, n_models: int) -> dict:
    r = json.loads((out / "results.json").read_text())
    acc = r["accounting"]
    # the identity, from two independent processes: replay's count and the listener's tally
    assert acc["sent"] == r["replay"]["sent"] > 0
    assert acc["answered"] + acc["skipped"] + acc["reported"] == acc["sent"]
    assert acc["answered"] == acc["sent"]  # --credit 1: every frame answered, none conflated
    assert r["replay"]["answered"] == acc["sent"] and r["replay"]["max_in_flight"] == 1
    assert r["frames_per_s"] > 0
    assert r["service_counters"]["predictions_published"] == acc["sent"]
    assert r["service_counters"]["dropped"]["conflated"] == 0
    # the C engine online scores what numpy scored offline on the same frames
    assert r["online"]["accuracy"] == pytest.approx(r["offline"]["accuracy"], abs=1.5 / acc["sent"])
    assert r["inference_us"]["original"]["median_us"] > 0 and r["inference_us"]["pruned"]["median_us"] > 0
    # the table
    for row in ("parameters", "FLOPs per frame", "inference per frame, C engine",
                "accuracy offline vs online", "end to end (source -> listener)", "deadline misses"):
        assert row in output
    assert (f"sent {acc['sent']} = answered {acc['answered']} + skipped 0 + reported 0  "
            "(accounted for)") in output
    assert re.search(r"\[6/6\] .*\n.*done in [\d.]+ s", output)
    assert not NOISE.search(output), NOISE.search(output)
    # report.html: self-contained, every plot there and decodable
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    images = _embedded_pngs(html)
    # a trajectory per candidate, candidates compared, latency histogram, predictions
    assert len(images) == n_models + 3
    assert all(im.size[0] > 300 and im.size[1] > 200 for im in images)
    for title in ("Pruning trajectories", "Candidates compared", "Latency", "Predictions against labels"):
        assert f"<h2>{title}</h2>" in html
    return r


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    return out


def test_demo_end_to_end_tiny(tiny_demo, capfd):
    code = main(["demo", "--out", str(tiny_demo), "--neurons", "12", "--frames", "1000",
                 "--models", "nn2", *TINY])
    cap = capfd.readouterr()
    assert code == 0, cap.err[-3000:]
    r = _check_run(tiny_demo, cap.out + cap.err, 1)
    assert r["sizes"]["pruned"]["params"] <= r["sizes"]["original"]["params"]
    assert r["seq_is_frame_index"] and r["accounting"]["sent"] == 100  # frames 900..999


def test_report_renders_in_headless_chromium(tiny_demo, tmp_path):
    from deploy_helpers import require_tool

    page = tiny_demo / "report.html"
    if not page.is_file():
        pytest.skip("the end-to-end demo test did not run")
    exe = require_tool("chromium")
    shot = tmp_path / "report.png"
    res = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-extensions", "--window-size=1100,3200", f"--user-data-dir={tmp_path / 'prof'}",
         f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20)
    blue = sum(n for n, (r, g, b) in colours if abs(r - 0x1F) < 12 and abs(g - 0x77) < 12 and abs(b - 0xB4) < 12)
    green = sum(n for n, (r, g, b) in colours if abs(r - 0x2C) < 12 and abs(g - 0xA0) < 12 and abs(b - 0x2C) < 12)
    # matplotlib's blue (trajectories, candidates, latency bars) and green (parameters
    # line, right predictions) are on the page: the images were decoded and drawn
    assert blue > 2000 and green > 200, (blue, green)


def test_demo_on_the_real_session(nelpy_path, tmp_path, capfd):
    out = tmp_path / "nelpy"
    code = main(["demo", "--session", str(nelpy_path), "--blocks", "5", "--out", str(out),
                 "--models", "nn2", *TINY])
    cap = capfd.readouterr()
    assert code == 0, cap.err[-3000:]
    r = _check_run(out, cap.out + cap.err, 1)
    assert "nelpy_linear_track.npz: 31 neurons" in r["session_text"]
    # the test part spans 5 blocks: replayed from held_out.npz, every frame of it
    assert not r["seq_is_frame_index"] and (out / "held_out.npz").is_file()


@pytest.mark.parametrize("bad", [{"credit": 0}, {"method": "magic"}, {"engine": "gpu"},
                                 {"models": ()}, {"retrain_epochs": 0}, {"select": "acc>>1"},
                                 {"blocks": 0}])
def test_bad_settings_refused(bad):
    with pytest.raises(ConfigError):
        DemoSettings(**bad)


def test_settings_round_trip():
    s = DemoSettings(out="x", models=("nn1", "cnn1"), credit=4)
    assert DemoSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="unknown"):
        DemoSettings.from_dict({"speed": 3})
