"""A real Prometheus server scrapes a real `neurogrs serve` fed by `neurogrs replay`, all on
loopback; then every PromQL expression of the dashboard and of the alert rules is evaluated
through Prometheus's HTTP API, and the latency and frame-rate panels must return data."""
from __future__ import annotations

import json
import math
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from deploy_helpers import DEPLOY, dashboard, dashboard_queries, expand, free_port, require_tool

pytestmark = pytest.mark.timeout(120)


class PromServer:
    """`prometheus` on a free loopback port with its data in a temp directory."""

    def __init__(self, binary, config_path, data_dir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir.parent / "prometheus.log", "w+")
        self.p = subprocess.Popen(
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, path, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:  # 400/422: PromQL errors come with a JSON body
            return json.loads(exc.read())

    def wait(self, what, check, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.p.poll() is not None:
                break
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.25)
        self.log.seek(0)
        pytest.fail(f"prometheus: {what} not within {timeout} s; log: {self.log.read()[-2000:]}")

    def query(self, expr):
        return self.get("/api/v1/query", query=expr)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.log.close()


def _config_for(metrics_url, tmp_path):
    """deploy/prometheus/prometheus.yml with the test's target, 1 s scrapes and rule
    evaluations, and the rule file by absolute path."""
    cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
    cfg["rule_files"] = [str(DEPLOY / "prometheus" / r) for r in cfg["rule_files"]]
    (job,) = cfg["scrape_configs"]
    job["scrape_timeout"] = "1s"
    job["static_configs"][0]["targets"] = [urllib.parse.urlparse(metrics_url).netloc]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _values(res):
    return [float(s["value"][1]) for s in res["data"]["result"]] if res["data"]["resultType"] == "vector" else []


@pytest.fixture
def prometheus_factory(tmp_path):
    binary = require_tool("prometheus")
    servers = []

    def start(metrics_url):
        (tmp_path / "data").mkdir()
        srv = PromServer(binary, _config_for(metrics_url, tmp_path), tmp_path / "data")
        servers.append(srv)
        srv.wait("ready", lambda: urllib.request.urlopen(srv.url + "/-/ready", timeout=2).status == 200, 30)
        return srv

    yield start
    for s in servers:
        s.stop()


def test_prometheus_scrapes_the_service_and_every_query_evaluates(procs, artifact_dir, session_file,
                                                                 prometheus_factory):
    srv = procs("serve", artifact_dir, "--engine", "numpy", "--frames", "@tcp://127.0.0.1:*",
                "--predictions", "@tcp://127.0.0.1:*", "--metrics-port", "0")
    ready = srv.event("ready")
    rep = procs("replay", session_file, "--frames", ">" + ready["frames"], "--loop",
                "--session-name", "rec", "--no-progress")
    prom = prometheus_factory(ready["metrics"])

    # bounded wait: several scrapes with frames flowing (rate() over 30 s needs two samples
    # that differ), and every rule group evaluated at least once
    prom.wait("scrapes of a running service",
              lambda: (_values(prom.query('count_over_time(up{job="neurogrs"}[1m])')) or [0])[0] >= 4
              and (_values(prom.query("neurogrs_predictions_published_total")) or [0])[0] > 0, 40)
    targets = prom.get("/api/v1/targets")["data"]["activeTargets"]
    assert [t["health"] for t in targets] == ["up"], targets

    def rules_evaluated():
        groups = prom.get("/api/v1/rules")["data"]["groups"]
        return groups and all(r["lastEvaluation"] > "2000" for g in groups for r in g["rules"])
    prom.wait("rule evaluation", rules_evaluated, 20)

    rules = [r for g in prom.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]]
    alerts = [r for g in yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())["groups"]
              for r in g["rules"]]
    assert {r["name"] for r in rules} == {r["alert"] for r in alerts}  # all loaded
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []

    # every expression, as Grafana (dashboard) or the rule evaluator (alerts) sends it
    queries = [(w, expand(e)) for w, e in dashboard_queries(dashboard())]
    queries += [(f"alert {r['alert']}", r["expr"]) for r in alerts]
    failures = []
    for where, expr in queries:
        res = prom.query(expr)
        if res.get("status") != "success":
            failures.append((where, expr, res.get("error")))
    assert failures == [], failures

    # the latency and frame-rate panels return numbers from this run
    exported = urllib.request.urlopen(ready["metrics"], timeout=5).read().decode()
    checked = 0
    for where, expr in dashboard_queries(dashboard()):
        if not any(k in where for k in ("latency p50 / p99", "Frames and predictions per second",
                                          "'Frames/s'")):
            continue
        if "deadline_seconds" in expr:
            continue
        metric = next(m for m in ("neurogrs_end_to_end_seconds", "neurogrs_service_seconds",
                                  "neurogrs_frames_received_total",
                                  "neurogrs_predictions_published_total") if m in expr)
        if metric not in exported:  # a metric this service version does not export yet
            assert metric == "neurogrs_service_seconds", metric
            continue
        vals = _values(prom.query(expand(expr)))
        assert vals and all(math.isfinite(v) and v > 0 for v in vals), (where, expr, vals)
        checked += 1
    assert checked >= 5  # e2e p50 + p99, frames/s stat, frames and predictions per second

    # p99 end-to-end is a plausible latency for a loopback service (and under the deadline
    # bucket's +Inf): between 1 us and 1 s
    (p99,) = _values(prom.query(expand(
        'histogram_quantile(0.99, sum(rate(neurogrs_end_to_end_seconds_bucket[$__rate_interval])) by (le))')))
    assert 1e-6 < p99 < 1.0

    rep.stop()
    assert srv.stop() == 0
