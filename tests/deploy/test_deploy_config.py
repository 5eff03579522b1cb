"""deploy/ configuration checked by the real tools: promtool (config, rules, rule unit
tests), systemd-analyze (verify, offline security), and structure tests for what has no
tool here (the Grafana dashboard and provisioning, compose, the Dockerfile)."""
from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from deploy_helpers import DEPLOY, ROOT, dashboard, dashboard_queries, require_tool

PROM = DEPLOY / "prometheus"
SYSTEMD = DEPLOY / "systemd"
UNITS = ("neurogrs-serve.service", "neurogrs-replay.service")


def _run(args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, **kw)


# ----------------------------------------------------------------------------- Prometheus
def test_promtool_check_config_and_rules():
    promtool = require_tool("promtool")
    res = _run([promtool, "check", "config", PROM / "prometheus.yml"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 rule files found" in res.stdout + res.stderr
    res = _run([promtool, "check", "rules", PROM / "alerts.yml"])
    assert res.returncode == 0, res.stdout + res.stderr


def _alerts():
    return [r for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
            for r in g["rules"] if "alert" in r]


def test_alerts_cover_the_issue_and_are_documented():
    rules = _alerts()
    exprs = " ".join(r["expr"] for r in rules)
    for metric in ("up{", "neurogrs_deadline_misses_total", "neurogrs_frames_dropped_total",
                   "neurogrs_frames_received_total", "neurogrs_clock_offset_seconds",
                   "neurogrs_curve_handshake_failures_total", "neurogrs_end_to_end_seconds_bucket",
                   "neurogrs_service_seconds_bucket", "neurogrs_service_deadline_misses_total"):
        assert metric in exprs, metric
    runbook = (ROOT / "docs" / "deploy.md").read_text()
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["runbook"], r["alert"]
        assert f"`{r['alert']}`" in runbook, f"{r['alert']} missing from docs/deploy.md#runbook"


def test_every_alert_has_a_unit_test_that_fires_it():
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
    fired = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert fired == {r["alert"] for r in _alerts()}


def test_promtool_rule_unit_tests_pass():
    promtool = require_tool("promtool")
    res = _run([promtool, "test", "rules", "alerts_test.yml"], cwd=PROM)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


@pytest.mark.parametrize("change", [
    ("> 0.01", "> 0.5"),                      # ratio thresholds: the firing series stop firing
    ("0.5 * neurogrs_deadline_seconds", "2 * neurogrs_deadline_seconds"),
    ("for: 1m", "for: 0m"),                   # a single failed scrape would page
])
def test_rule_unit_tests_catch_a_changed_rule(tmp_path, change):
    """The unit tests can fail: the same tests against a rule file with one edit."""
    promtool = require_tool("promtool")
    text = (PROM / "alerts.yml").read_text()
    assert change[0] in text
    (tmp_path / "alerts.yml").write_text(text.replace(change[0], change[1]))
    (tmp_path / "alerts_test.yml").write_text((PROM / "alerts_test.yml").read_text())
    res = _run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path)
    assert res.returncode != 0 and "FAILED" in res.stdout + res.stderr


# ----------------------------------------------------------------------------- Grafana
def test_dashboard_has_what_grafana_requires():
    d = dashboard()
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"])  # Grafana's uid limit
    assert d["title"] and isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    types = set()
    for p in d["panels"]:
        gp = p["gridPos"]
        assert {"h", "w", "x", "y"} <= gp.keys() and gp["x"] + gp["w"] <= 24, p["title"]
        types.add(p["type"])
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["datasource"] == p["datasource"], p["title"]
    assert {"timeseries", "heatmap", "stat", "table"} <= types
    # panels do not overlap (Grafana would move them)
    cells = set()
    for p in d["panels"]:
        gp = p["gridPos"]
        mine = {(x, y) for x in range(gp["x"], gp["x"] + gp["w"]) for y in range(gp["y"], gp["y"] + gp["h"])}
        assert not cells & mine, p["title"]
        cells |= mine


def test_dashboard_shows_what_the_issue_asks():
    exprs = "\n".join(e for _, e in dashboard_queries(dashboard()))
    for needle in ("histogram_quantile(0.5, sum by (instance, le) (rate(neurogrs_end_to_end_seconds_bucket",
                   "histogram_quantile(0.99, sum by (instance, le) (rate(neurogrs_end_to_end_seconds_bucket",
                   "histogram_quantile(0.99, sum by (instance, le) (rate(neurogrs_service_seconds_bucket",
                   "neurogrs_stage_seconds_bucket", "rate(neurogrs_frames_received_total",
                   "sum by (reason) (rate(neurogrs_frames_dropped_total", "neurogrs_deadline_misses_total",
                   "neurogrs_model_info"):
        assert needle in exprs, needle
    heatmaps = [p for p in dashboard()["panels"] if p["type"] == "heatmap"]
    assert heatmaps and heatmaps[0]["targets"][0]["format"] == "heatmap"


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["apiVersion"] == 1
    (src,) = ds["datasources"]
    assert src["type"] == "prometheus" and src["url"].startswith("http://") and src["uid"]
    prov = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/neurogrs.yml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    # the provider's path is where compose mounts deploy/grafana/dashboards
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert (DEPLOY / "compose.yaml").parent.joinpath("grafana/dashboards/neurogrs.json").is_file()
    # the datasource URL is where compose's Prometheus listens
    listen = next(a for a in compose["services"]["prometheus"]["command"] if "listen-address" in a)
    assert src["url"] == "http://" + listen.split("=", 1)[1]


# ----------------------------------------------------------------------------- systemd
def _unit_for_this_machine(tmp_path, name):
    """The unit with ExecStart pointing at this checkout's neurogrs (systemd-analyze
    verify checks that the binary exists)."""
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "neurogrs"
    text = (SYSTEMD / name).read_text()
    assert "/opt/neurogrs/venv/bin/neurogrs" in text
    out = tmp_path / name
    out.write_text(text.replace("/opt/neurogrs/venv/bin/neurogrs", str(exe)))
    return out


def test_systemd_analyze_verify_units(tmp_path):
    sa = require_tool("systemd-analyze")
    paths = [_unit_for_this_machine(tmp_path, u) for u in UNITS]
    res = _run([sa, "verify", *paths])
    # verify exits 0 on unknown keys and merely warns: any line naming our units fails
    assert res.returncode == 0 and "neurogrs-" not in res.stdout + res.stderr, res.stdout + res.stderr


def test_systemd_verify_catches_a_bad_unit(tmp_path):
    """The check above can fail: a misspelt key and a missing binary are reported."""
    sa = require_tool("systemd-analyze")
    bad = _unit_for_this_machine(tmp_path, UNITS[0])
    bad.write_text(bad.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    res = _run([sa, "verify", bad])
    assert "NoNewPrivilege" in res.stdout + res.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_units_are_hardened(tmp_path, unit):
    sa = require_tool("systemd-analyze")
    # systemd's own exposure score (0 = locked down, 10 = unprotected): fail above 4.0
    res = _run([sa, "security", "--offline=true", "--threshold=40",
                _unit_for_this_machine(tmp_path, unit)])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_unit_keys(unit):
    """What the issue asks of the units, read with a parser of the unit format."""
    import configparser

    cp = configparser.RawConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string((SYSTEMD / unit).read_text())
    s = cp["Service"]
    assert s["User"] == "neurogrs" and s["User"] != "root"
    assert s["Restart"] == "on-failure"
    assert s["ProtectSystem"] == "strict" and s["NoNewPrivileges"] == "yes"
    assert s["PrivateTmp"] == "yes"
    assert s["EnvironmentFile"].startswith("/etc/neurogrs/")
    assert "$NEUROGRS_" in s["ExecStart"]
    assert "#CPUAffinity=" in (SYSTEMD / unit).read_text()
    assert cp["Install"]["WantedBy"] == "multi-user.target"
    env = SYSTEMD / (unit.split("-")[1].split(".")[0] + ".env.example")
    names = re.findall(r"\$\{?(NEUROGRS_[A-Z_]+)", s["ExecStart"])
    assert set(names) <= set(re.findall(r"^(NEUROGRS_[A-Z_]+)=", env.read_text(), re.M))


def test_sysusers_creates_the_dedicated_user():
    sysusers = require_tool("systemd-sysusers")
    res = _run([sysusers, "--dry-run", SYSTEMD / "neurogrs.sysusers.conf"])
    assert res.returncode == 0, res.stderr
    assert "Creating user 'neurogrs'" in res.stdout + res.stderr


# ----------------------------------------------------------------------------- compose, Docker
def test_compose_structure():
    """No docker compose here (and no image registry): parse the file and check the stack."""
    c = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    svc = c["services"]
    assert {"serve", "replay", "prometheus", "grafana"} <= svc.keys()
    for name in ("serve", "replay"):
        s = svc[name]
        assert s["build"]["dockerfile"] == "deploy/Dockerfile" and s["build"]["context"] == ".."
        assert s["command"][0] == name and s["restart"] == "on-failure"
        assert s["read_only"] is True and "ALL" in s["cap_drop"]
    assert svc["replay"]["depends_on"]["serve"]["condition"] == "service_healthy"
    assert "healthcheck" in svc["serve"]
    for name, s in svc.items():
        assert s.get("network_mode") == "host", name  # loopback ports, as without containers
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("./"):
                assert (DEPLOY / src).exists(), v
            elif not src.startswith("$"):
                assert src in c["volumes"], v
    # Prometheus reads deploy/prometheus and serves where Grafana's datasource looks
    assert "./prometheus:/etc/prometheus:ro" in svc["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in svc["prometheus"]["command"]
    # image tags pinned (no :latest)
    for name in ("prometheus", "grafana"):
        assert re.search(r":v?\d+\.\d+\.\d+$", svc[name]["image"]), svc[name]["image"]
    # the metrics port serve listens on is the one prometheus.yml scrapes
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    target = prom["scrape_configs"][0]["static_configs"][0]["targets"][0]
    cmd = svc["serve"]["command"]
    assert target == f"{cmd[cmd.index('--metrics-addr') + 1]}:{cmd[cmd.index('--metrics-port') + 1]}"


def test_dockerfile_installs_the_runtime_dependencies_of_pyproject(tmp_path):
    """No docker here: run the Dockerfile's own dependency line (python -c ...) against
    pyproject.toml and check it lists every dependency but TensorFlow."""
    import shlex
    import sys
    import tomllib

    text = (DEPLOY / "Dockerfile").read_text()
    (line,) = re.findall(r'^RUN (python -c ".*") > /tmp/runtime.txt', text, re.M)
    argv = shlex.split(line)
    res = _run([sys.executable, *argv[1:]], cwd=ROOT)
    assert res.returncode == 0, res.stderr
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert res.stdout.split("\n")[:-1] == [d for d in deps if not d.startswith("tensorflow")]
    assert any(d.startswith("tensorflow") for d in deps)  # the filter has something to filter
    assert re.search(r"^USER neurogrs$", text, re.M)
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / copied).exists(), copied
    # the package's folders are all copied (a new top-level folder would be missed)
    pkg_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    assert set(pkg_dirs) <= set(re.findall(r"^COPY (\S+)", text, re.M))
