"""Helpers and fixtures for the deploy/ tests (conftest.py imports the fixtures): real tools
(skipped only when not installed), a tiny artifact and session, subprocesses that are
always stopped, free loopback ports."""
from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD_JSON = DEPLOY / "grafana" / "dashboards" / "neurogrs.json"
N_INPUTS = 20

# which Debian package provides each tool (.ci/run installs them)
_PACKAGES = {"promtool": "prometheus", "prometheus": "prometheus", "chromium": "chromium",
             "systemd-analyze": "systemd"}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package {_PACKAGES.get(name, name)!r}; "
                    ".ci/run installs it)")
    return path


def free_port() -> int:
    """A free TCP port on loopback (for servers that cannot report an ephemeral port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard() -> dict:
    return json.loads(DASHBOARD_JSON.read_text())


def dashboard_queries(dash: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every target of every panel (rows' nested panels included) and
    every query variable (label_values(expr, label) -> expr)."""
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((f"panel {p['title']!r} target {t['refId']}", t["expr"]))

    walk(dash["panels"])
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q.strip())
            out.append((f"variable {v['name']}", m.group(1) if m else q))
    return out


# Grafana's template variables, as Grafana would expand them for a short time range
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__interval": "1s", "$instance": ".*"}


def expand(expr: str) -> str:
    for k, v in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(k, v)
    return expr


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory):
    from neurogrs.artifact import save_artifact
    from neurogrs.zoo import init_spec

    d = tmp_path_factory.mktemp("deploy-art") / "art"
    save_artifact(init_spec("nn1", N_INPUTS, np.random.default_rng(0)), d)
    return d


@pytest.fixture(scope="session")
def session_file(tmp_path_factory):
    """A small recorded session: 20 inputs, two classes, 100 frames/s."""
    from neurogrs.formats import save_session
    from neurogrs.session import Session

    rng = np.random.default_rng(7)
    T = 400
    sess = Session(rng.normal(size=(T, N_INPUTS)).astype(np.float32),
                   (np.arange(T) // 50) % 2, fs=100.0)
    return save_session(sess, tmp_path_factory.mktemp("deploy-sess") / "rec.npz")


