"""Sweeps: (session × model × method × trial) pruning jobs on a local pool or a Ray cluster.

A sweep is described by a TOML file (`SweepSettings.from_file`):

    sessions = ["s1.npz", "s2.npz"]      # relative to the TOML file's folder
    models = ["nn1", "cnn1"]
    methods = ["grs", "jgrs"]
    trials = 3                           # trial t uses prune seed = seed + t
    seed = 0
    out = "sweep-out"                    # optional (--out wins)
    [prune]                              # any PruneSettings field
    retrain_epochs = 20

Each job runs `prune_session` for one session, model and method into
`OUT/runs/<job>/` and its outcome is saved as `OUT/results/<job>.json` the moment it
finishes (written to a temporary file, then renamed: a result file is complete or absent).
A sweep started again skips every job whose result is there, so an interrupted sweep
resumes where it stopped. A failed job is saved as `<job>.error.json` with its error (and
tried again next time); the others go on.

Trials of one (session, model) share the prune seed across methods, so every method of a
trial prunes the same initial model (a paired comparison).

Every job pins its threads (`PINNED_ENV`: BLAS/OpenMP/numba/TensorFlow on one thread) so
parallel jobs do not fight over cores. Locally each job is a fresh `python -m
neurogrs.pruning.sweep_job` process (a crash or Ctrl-C loses that job only), optionally
bound to one CPU; on Ray each job is a task with `num_cpus=1` and the same environment.
Jobs and results cross process boundaries as JSON.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from neurogrs.errors import ConfigError
from neurogrs.settings import read_toml
from neurogrs.pruning.settings import PruneSettings

__all__ = ["SweepSettings", "PINNED_ENV", "jobs_of", "run_job", "run_job_json", "pending",
           "write_result", "run_local", "run_ray", "load_results"]

PINNED_ENV = {name: "1" for name in (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}

CPU_ENV = "NEUROGRS_SWEEP_CPU"  # a local job binds itself to this CPU (--pin-cpus)

_METHODS = ("grs", "rrs", "nwm", "jgrs")


def _str_list(name: str, value: Any) -> list[str]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) and v for v in value)):
        raise ConfigError(f"sweep {name} must be a non-empty list of strings, got {value!r}")
    return list(value)


@dataclass(frozen=True)
class SweepSettings:
    """What a sweep runs; validated on creation, round-trips with to_dict/from_dict."""

    sessions: list[str]
    models: list[str] = field(default_factory=lambda: ["nn1"])
    methods: list[str] = field(default_factory=lambda: ["grs", "jgrs"])
    trials: int = 1
    seed: int = 0
    out: str | None = None
    prune: PruneSettings = field(default_factory=PruneSettings)

    def __post_init__(self) -> None:
        for name in ("sessions", "models", "methods"):
            object.__setattr__(self, name, _str_list(name, getattr(self, name)))
        bad = sorted(set(self.methods) - set(_METHODS))
        if bad:
            raise ConfigError(f"sweep methods {bad} unknown; choose from {list(_METHODS)}")
        for name, hi in (("trials", 100_000), ("seed", 2**62)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
                raise ConfigError(f"sweep {name} must be an integer in [0, {hi}], got {v!r}")
        if self.trials < 1:
            raise ConfigError(f"sweep trials must be >= 1, got {self.trials}")
        if self.out is not None and not isinstance(self.out, str):
            raise ConfigError(f"sweep out must be a path string, got {self.out!r}")
        if not isinstance(self.prune, PruneSettings):
            raise ConfigError("sweep prune must be PruneSettings")

    def to_dict(self) -> dict[str, Any]:
        return {"sessions": list(self.sessions), "models": list(self.models),
                "methods": list(self.methods), "trials": self.trials, "seed": self.seed,
                "out": self.out, "prune": self.prune.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SweepSettings":
        if not isinstance(d, dict):
            raise ConfigError(f"sweep settings must be a table, got {type(d).__name__}")
        known = {"sessions", "models", "methods", "trials", "seed", "out", "prune"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown sweep setting(s) {unknown}; known: {sorted(known)}")
        if "sessions" not in d:
            raise ConfigError("sweep settings need `sessions` (a list of session files)")
        args = dict(d)
        args["prune"] = PruneSettings.from_dict(d.get("prune") or {})
        return cls(**args)

    @classmethod
    def from_file(cls, path: str | Path) -> "SweepSettings":
        """A TOML sweep file; relative session paths are read from the file's folder."""
        p = Path(path)
        s = cls.from_dict(read_toml(p, f"sweep config {p}"))
        base = p.resolve().parent
        return replace(s, sessions=[str(base / x) for x in s.sessions])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def jobs_of(s: SweepSettings, out: Path) -> list[dict]:
    """Every job of the sweep, in a fixed order, as JSON-ready dicts with a unique `id`."""
    jobs = []
    for i, session in enumerate(s.sessions):
        stem = _slug(Path(session).name.split(".")[0])
        for model in s.models:
            for method in s.methods:
                for t in range(s.trials):
                    job_id = f"s{i}-{stem}__{_slug(Path(model).stem)}__{method}__t{t}"
                    prune = {**s.prune.to_dict(), "seed": s.seed + t}
                    jobs.append({"id": job_id, "session": session, "model": model,
                                 "method": method, "trial": t, "prune": prune,
                                 "run_dir": str(out / "runs" / job_id)})
    return jobs


# ------------------------------------------------------------------ one job
def run_job(job: dict) -> dict:
    """Run one job in this process; never raises: failures come back as status "error"."""
    import time

    t0 = time.perf_counter()
    worker = {"host": os.uname().nodename, "pid": os.getpid(),
              "cpus": sorted(os.sched_getaffinity(0)),
              "threads_env": {k: os.environ.get(k) for k in PINNED_ENV}}
    base = {"id": job["id"], "job": job, "worker": worker}
    try:
        from neurogrs.formats import load_session
        from neurogrs.pruning.pipeline import prune_session

        settings = PruneSettings.from_dict(job["prune"])
        session = load_session(job["session"])
        run = prune_session(session, [job["model"]], job["method"], settings, job["run_dir"])
        label = next(iter(run.report["candidates"]))
        cand = run.report["candidates"][label]
        if run.partial:
            return {**base, "status": "error", "error": "interrupted (partial run)",
                    "seconds": round(time.perf_counter() - t0, 3)}
        search = cand["search"]
        return {**base, "status": "ok", "seconds": round(time.perf_counter() - t0, 3),
                "prune_seconds": search["seconds"], "retrainings": search["retrainings"],
                "initial": _values(cand["initial"]), "pruned": _values(cand["pruned"]),
                "reductions": cand["reductions"]["pruned"],
                "session_neurons": run.report["session"]["neurons"]}
    except Exception as exc:  # noqa: BLE001 - a job reports its error, the sweep goes on
        return {**base, "status": "error", "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=8),
                "seconds": round(time.perf_counter() - t0, 3)}


def _values(v: dict) -> dict:
    return {"structure": v["structure"], "val": v["val"]["metric"], "test": v["test"]["metric"],
            "params": v["params"], "flops": v["flops"]}


def run_job_json(job_json: str) -> str:
    """`run_job` between JSON strings (what crosses a process or Ray boundary)."""
    return json.dumps(run_job(json.loads(job_json)))


# ------------------------------------------------------------------ results on disk
def _result_path(out: Path, job_id: str, ok: bool) -> Path:
    return out / "results" / (f"{job_id}.json" if ok else f"{job_id}.error.json")


def write_result(out: Path, result: dict) -> Path:
    """Save a job's result atomically (temporary file + rename); an ok result clears an
    earlier error file of the same job."""
    ok = result.get("status") == "ok"
    path = _result_path(out, result["id"], ok)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    if ok:
        _result_path(out, result["id"], False).unlink(missing_ok=True)
    return path


def pending(jobs: Iterable[dict], out: Path) -> list[dict]:
    """The jobs without a saved ok result."""
    return [j for j in jobs if not _result_path(out, j["id"], True).is_file()]


def load_results(jobs: Iterable[dict], out: Path) -> list[dict]:
    """Each job's saved result (ok, else its error), in job order; absent jobs left out."""
    results = []
    for j in jobs:
        for ok in (True, False):
            p = _result_path(out, j["id"], ok)
            if p.is_file():
                results.append(json.loads(p.read_text()))
                break
    return results


# ------------------------------------------------------------------ executors
Done = Callable[[dict], None]


def _local_one(job: dict, cpu: int | None) -> dict:
    env = {**os.environ, **PINNED_ENV}
    if cpu is not None:  # the job binds itself (preexec_fn is unsafe with threads)
        env[CPU_ENV] = str(cpu)
    proc = subprocess.run([sys.executable, "-m", "neurogrs.pruning.sweep_job"],
                          input=json.dumps(job), capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    if lines:  # the job's own result, ok or error (exit status 1 for an error)
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
    return {"id": job["id"], "job": job, "status": "error",
            "error": f"job process exited with {proc.returncode}: {tail or 'no output'}"}


def run_local(jobs: list[dict], workers: int, done: Done, pin_cpus: bool = False) -> None:
    """Run jobs on `workers` local processes; `done(result)` as each one finishes."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    cpus = sorted(os.sched_getaffinity(0)) if pin_cpus else []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_local_one, job, cpus[i % len(cpus)] if cpus else None): job
                   for i, job in enumerate(jobs)}
        try:
            for fut in as_completed(futures):
                done(fut.result())
        except KeyboardInterrupt:
            for fut in futures:
                fut.cancel()
            raise


def run_ray(jobs: list[dict], address: str, done: Done) -> None:
    """Run jobs as Ray tasks (num_cpus=1, threads pinned) on the cluster at `address`."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--ray needs Ray: pip install 'neurogrs[ray]'") from exc
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    task = ray.remote(num_cpus=1, max_retries=0,
                      runtime_env={"env_vars": dict(PINNED_ENV)})(run_job_json)
    refs = {task.remote(json.dumps(job)): job for job in jobs}
    waiting = list(refs)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        for ref in ready:
            job = refs[ref]
            try:
                result = json.loads(ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - a lost worker fails one job only
                result = {"id": job["id"], "job": job, "status": "error",
                          "error": f"ray task failed: {type(exc).__name__}: {exc}"}
            done(result)
