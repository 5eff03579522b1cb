"""docs/examples/: the Python and the C closed-loop clients, built and run against a real
`neurogrs serve` (numpy engine, a tiny artifact made here) on loopback. Each must account
for every frame it sent (answered + skipped + reported = sent), and the service's own
counters must agree with the client's ledger."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from neurogrs.artifact import save_artifact
from neurogrs.bench.process import EventProcess
from neurogrs.zoo import init_spec

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
N_INPUTS = 20
SENT, BAD_EVERY = 200, 50


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    d = tmp_path_factory.mktemp("examples") / "art"
    save_artifact(init_spec("nn1", N_INPUTS, np.random.default_rng(0)), d)
    return d


@pytest.fixture
def service(artifact):
    """A real `neurogrs serve` subprocess on ephemeral loopback ports; its ready line."""
    srv = EventProcess(["-m", "neurogrs", "serve", str(artifact), "--engine", "numpy",
                        "--frames", "@tcp://127.0.0.1:*", "--predictions", "@tcp://127.0.0.1:*",
                        "--metrics-port", "0"])
    try:
        yield srv.event("ready", timeout=30)
    finally:
        srv.stop()


def _counters(metrics_url: str) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _check(summary: dict, ready: dict) -> None:
    assert summary["sent"] == SENT
    assert summary["answered"] + summary["skipped"] + summary["reported"] == summary["sent"]
    assert summary["accounted"] is True and summary["end_of_stream"] is True
    assert summary["answered"] > 0  # predictions arrived
    assert summary["reported"] == SENT // BAD_EVERY  # every NaN frame came back as an error
    assert summary["n_inputs"] == N_INPUTS
    c = _counters(ready["metrics"])  # the service's side of the ledger
    assert c[("neurogrs_frames_received_total", ())] == SENT
    assert c[("neurogrs_predictions_published_total", ())] == summary["answered"]
    assert c[("neurogrs_bad_input_total", (("kind", "non_finite"),))] == summary["reported"]
    assert c[("neurogrs_frames_dropped_total", (("reason", "conflated"),))] == summary["skipped"]


def _run(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{cmd[0]} exited {out.returncode}: {out.stderr[-2000:]}{out.stdout}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_python_closed_loop_example_accounts_for_every_frame(service):
    summary = _run([sys.executable, str(EXAMPLES / "closed_loop.py"),
                    "--frames", service["frames"], "--predictions", service["predictions"],
                    "--session", "py1", "--count", str(SENT), "--rate", "400",
                    "--bad-every", str(BAD_EVERY), "--timeout", "10"])
    _check(summary, service)


def _c_deps_missing() -> str | None:
    if shutil.which("pkg-config") is None or shutil.which("cc") is None:
        return "pkg-config or cc missing"
    have = lambda pkg: subprocess.run(["pkg-config", "--exists", pkg]).returncode == 0  # noqa: E731
    if not have("libzmq") or not (have("msgpack-c") or have("msgpack")):
        return "libzmq / msgpack-c dev packages missing (Debian: libzmq3-dev libmsgpack-dev)"
    return None


@pytest.fixture(scope="module")
def c_client(tmp_path_factory):
    """docs/examples/c_client built with its Makefile and the real compiler, warnings as errors."""
    reason = _c_deps_missing()
    if reason:
        pytest.skip(reason)
    build = tmp_path_factory.mktemp("c_client") / "c_client"
    shutil.copytree(EXAMPLES / "c_client", build, ignore=shutil.ignore_patterns("closed_loop"))
    out = subprocess.run(["make", "-C", str(build), "EXTRA_CFLAGS=-Werror -pedantic"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return build / "closed_loop"


def test_c_client_example_builds_and_accounts_for_every_frame(service, c_client):
    summary = _run([str(c_client), "-f", service["frames"], "-p", service["predictions"],
                    "-s", "c1", "-n", str(SENT), "-r", "400", "-b", str(BAD_EVERY), "-t", "10"])
    assert summary["client"] == "c"
    _check(summary, service)


def test_c_client_refuses_bad_usage(c_client):
    out = subprocess.run([str(c_client), "-s", "bad.name"], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 2 and "usage" in out.stderr
    out = subprocess.run([str(c_client), "-h"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "-b  make every K-th frame NaN" in out.stdout


def test_python_example_refuses_bad_options():
    out = subprocess.run([sys.executable, str(EXAMPLES / "closed_loop.py"), "--rate", "0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--rate must be > 0, got 0.0" in out.stderr
