"""`neurogrs sweep`: local pool, resume after an interruption, a failing job, Ray."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from neurogrs.cli import main
from neurogrs.errors import ConfigError
from neurogrs.formats import save_session
from neurogrs.pruning.settings import PruneSettings
from neurogrs.pruning.sweep import SweepSettings, jobs_of, pending, write_result

TINY = """\
models = ["nn2"]
trials = {trials}
sessions = {sessions}
methods = {methods}
[prune]
initial_epochs = 3
retrain_epochs = 1
tau_s = 0.9
blocks = 4
"""


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory, small_session):
    d = tmp_path_factory.mktemp("sweep")
    save_session(small_session, d / "s.npz")
    return d


def config(d: Path, sessions=("s.npz",), methods=("grs", "jgrs"), trials=1) -> Path:
    path = d / f"sweep-{len(sessions)}-{len(methods)}-{trials}.toml"
    path.write_text(TINY.format(sessions=json.dumps(list(sessions)),
                                methods=json.dumps(list(methods)), trials=trials))
    return path


def results(out: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))}


def test_settings_round_trip_and_errors(session_dir):
    s = SweepSettings.from_file(config(session_dir))
    assert s.sessions == [str(session_dir / "s.npz")] and s.prune.retrain_epochs == 1
    assert SweepSettings.from_dict(s.to_dict()) == s
    jobs = jobs_of(s, session_dir / "o")
    assert [j["id"] for j in jobs] == ["s0-s__nn2__grs__t0", "s0-s__nn2__jgrs__t0"]
    assert all(j["prune"]["seed"] == 0 for j in jobs)  # methods of a trial: same model
    with pytest.raises(ConfigError, match="sweep methods \\['ggrs'\\] unknown"):
        SweepSettings(sessions=["a"], methods=["ggrs"])
    with pytest.raises(ConfigError, match="unknown sweep setting"):
        SweepSettings.from_dict({"sessions": ["a"], "trails": 2})
    with pytest.raises(ConfigError, match="trials must be"):
        SweepSettings(sessions=["a"], trials=0, prune=PruneSettings())


@pytest.mark.slow  # job processes import TensorFlow each (seconds on 2 cores)
def test_local_pool_then_rerun_skips_done_jobs(session_dir, tmp_path, capsys):
    out = tmp_path / "out"
    cfg = config(session_dir)
    assert main(["sweep", str(cfg), "--out", str(out), "--workers", "2", "--quiet",
                 "--pin-cpus"]) == 0
    table = capsys.readouterr().out
    assert "| nn2 | grs | 1 | 0 |" in table and "| nn2 | jgrs | 1 | 0 |" in table
    got = results(out)
    assert set(got) == {"s0-s__nn2__grs__t0.json", "s0-s__nn2__jgrs__t0.json"}
    for r in got.values():
        assert r["status"] == "ok" and r["retrainings"] >= 1
        assert len(r["worker"]["cpus"]) == 1  # --pin-cpus: one CPU each
        assert set(r["worker"]["threads_env"].values()) == {"1"}  # threads pinned
        assert r["pruned"]["params"] < r["initial"]["params"]
    # both methods pruned the same initial model (same trial seed)
    assert len({json.dumps(r["initial"]) for r in got.values()}) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] == 2 and not summary["failed"]
    stamps = {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    t0 = time.perf_counter()
    assert main(["sweep", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert time.perf_counter() - t0 < 5  # nothing ran again
    assert "0 to run" in capsys.readouterr().err
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}


@pytest.mark.slow  # job processes import TensorFlow each (seconds on 2 cores)
def test_failing_job_is_reported_and_the_others_complete(session_dir, tmp_path, capsys):
    out = tmp_path / "out"
    cfg = config(session_dir, sessions=("s.npz", "missing.npz"), methods=("jgrs",))
    assert main(["sweep", str(cfg), "--out", str(out), "--workers", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "s1-missing__nn2__jgrs__t0 failed" in err and "missing.npz" in err
    got = results(out)
    assert got["s0-s__nn2__jgrs__t0.json"]["status"] == "ok"
    bad = got["s1-missing__nn2__jgrs__t0.error.json"]
    assert bad["status"] == "error" and "missing.npz" in bad["error"]
    # a rerun tries the failed job again, not the finished one
    s = SweepSettings.from_file(cfg)
    assert [j["id"] for j in pending(jobs_of(s, out), out)] == ["s1-missing__nn2__jgrs__t0"]


@pytest.mark.slow  # job processes import TensorFlow each (seconds on 2 cores)
def test_killed_sweep_resumes_where_it_stopped(session_dir, tmp_path):
    out = tmp_path / "out"
    cfg = config(session_dir, methods=("jgrs",), trials=3)
    cmd = [sys.executable, "-m", "neurogrs", "sweep", str(cfg), "--out", str(out),
           "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = out / "results" / "s0-s__nn2__jgrs__t0.json"
    deadline = time.monotonic() + 120
    while not first.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its running job, mid-sweep
    proc.wait()
    assert first.exists()
    done_before = set(results(out))
    assert len(done_before) < 3  # really interrupted
    stamp = first.stat().st_mtime_ns
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done_before)} already done" in rerun.stderr
    assert first.stat().st_mtime_ns == stamp
    assert len(results(out)) == 3
    assert not list((out / "results").glob(".*tmp"))  # no half-written file left


def test_write_result_is_atomic_and_clears_errors(tmp_path):
    write_result(tmp_path, {"id": "j", "status": "error", "error": "x"})
    assert (tmp_path / "results" / "j.error.json").exists()
    write_result(tmp_path, {"id": "j", "status": "ok"})
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["j.json"]


@pytest.mark.slow  # job processes import TensorFlow each (seconds on 2 cores)
def test_ray_cluster(session_dir, tmp_path, capsys):
    ray = pytest.importorskip("ray")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths
    info = ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp,
                    log_to_driver=False)
    try:
        address = info.address_info["gcs_address"]
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-m", "neurogrs", "sweep",
                               str(config(session_dir)), "--out", str(out), "--ray", address,
                               "--quiet"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = results(out)
        assert set(got) == {"s0-s__nn2__grs__t0.json", "s0-s__nn2__jgrs__t0.json"}
        assert all(r["status"] == "ok" for r in got.values())
        assert all(set(r["worker"]["threads_env"].values()) == {"1"} for r in got.values())
        assert "| nn2 | jgrs | 1 | 0 |" in proc.stdout
    finally:
        ray.shutdown()
