"""`neurogrs bench pruning --suite`: pruning methods over the simulated nine-session suite.

One job = (model, split, session, trial, method): `neurogrs.pruning.pipeline.prune_session`
on that session with that method and Stage T/Q, writing its artifacts and report under
`OUT/jobs/<model>/<split>/<session>/t<trial>/<method>/`. The numbers the tables need are
appended to `OUT/jobs.jsonl` as soon as a job finishes (one line per job, one `write`),
so a killed suite keeps what it did and `--resume` runs only what is missing (failed jobs
are retried). Tables are computed from those lines (`neurogrs.bench.suite_tables`).

The two splits (`SPLITS`): `shuffled` decides and reports on accuracy (the papers'
setting), `blocked` on balanced accuracy (the product's default). Trial k uses seed
`settings.seed + k` (split, initial weights, pruning draws).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from neurogrs.errors import ConfigError
from neurogrs.pruning.methods import method_names
from neurogrs.pruning.settings import STAGE_T_READINGS, PruneSettings
from neurogrs.simulate_settings import DIFFICULTIES, SimulationSettings

__all__ = ["SPLITS", "SUITE_SCHEMA", "QUICK_SESSIONS", "QUICK_PRUNE", "SuiteSettings", "Job", "plan_jobs", "suite_sessions",
           "read_records", "run_suite"]

SUITE_SCHEMA = "neurogrs.prune-suite/1"
# split name -> (PruneSettings.split, PruneSettings.metric)
SPLITS: dict[str, tuple[str, str]] = {
    "shuffled": ("shuffled", "accuracy"),
    "blocked": ("blocked", "balanced_accuracy"),
}
MODELS = ("nn1", "nn2", "cnn1", "cnn2")

# The command's quick default (`neurogrs bench pruning --suite` without flags), sized to
# finish in about 30 minutes on the shared 2-core machine (docs/benchmarks.md): all four
# models and methods, the shuffled split, one session per mouse, one trial, and fewer
# epochs than the paper's (fine-tuning 50 -> 5: a cnn1 GRS iteration trains up to five
# candidates). `--sessions all --retrain-epochs 50 --initial-epochs 150` is the paper's scale.
QUICK_SESSIONS = ("M1_S1", "M2_S1", "M3_S1")
QUICK_PRUNE = {"retrain_epochs": 5, "initial_epochs": 50}


def _names(field: str, values: Iterable[str], valid: Iterable[str]) -> tuple[str, ...]:
    values, valid = tuple(values), tuple(valid)
    bad = [v for v in values if v not in valid]
    if not values or bad or len(set(values)) != len(values):
        raise ConfigError(f"{field} must be distinct names among {valid}, got {list(values)}")
    return values


@dataclass(frozen=True)
class SuiteSettings:
    """What the suite runs; `prune` holds every pruning knob (split/metric/seed per job)."""

    models: tuple[str, ...] = ("nn1", "cnn1")
    methods: tuple[str, ...] = ("grs", "rrs", "nwm")
    splits: tuple[str, ...] = ("shuffled", "blocked")
    sessions: tuple[str, ...] = ()  # suite session names (M1_S1 ...); () = all nine
    trials: int = 1
    frames: int = 3000  # frames per simulated session
    difficulty: str = "standard"  # simulator setting (neurogrs.simulate_settings.DIFFICULTIES)
    tq: bool = True  # Stage T/Q after every structured method
    # Stage T readings also run on each job's structured model, recorded side by side
    # (neurogrs.bench.tq_readings); () = only the one in prune.stage_t
    tq_readings: tuple[str, ...] = ()
    prune: PruneSettings = PruneSettings()

    def __post_init__(self) -> None:
        if isinstance(self.prune, dict):
            object.__setattr__(self, "prune", PruneSettings.from_dict(self.prune))
        for name in ("models", "methods", "splits", "sessions", "tq_readings"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        _names("models", self.models, MODELS)
        _names("methods", self.methods, method_names())
        _names("splits", self.splits, SPLITS)
        if self.sessions:
            _names("sessions", self.sessions, all_session_names())
        if self.tq_readings:
            _names("tq_readings", self.tq_readings, STAGE_T_READINGS)
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) \
                or not 1 <= self.trials <= 1000:
            raise ConfigError(f"trials must be an integer in [1, 1000], got {self.trials!r}")
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) \
                or not 200 <= self.frames <= 1_000_000:
            raise ConfigError(f"frames must be an integer in [200, 1000000], got {self.frames!r}")
        if self.difficulty not in DIFFICULTIES:
            raise ConfigError(f"difficulty must be one of {sorted(DIFFICULTIES)}, "
                              f"got {self.difficulty!r}")
        if not isinstance(self.tq, bool):
            raise ConfigError(f"tq must be true or false, got {self.tq!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update({k: list(getattr(self, k))
                  for k in ("models", "methods", "splits", "sessions", "tq_readings")})
        d["prune"] = self.prune.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SuiteSettings":
        return cls(**d)

    def session_names(self) -> tuple[str, ...]:
        return self.sessions or all_session_names()


def all_session_names() -> tuple[str, ...]:
    from neurogrs.simulate import SUITE

    return tuple(f"{mouse}_S{k + 1}" for mouse, _, _, targets in SUITE
                 for k in range(len(targets)))


@dataclass(frozen=True)
class Job:
    model: str
    split: str
    session: str
    trial: int
    method: str

    @property
    def key(self) -> str:
        return f"{self.model}/{self.split}/{self.session}/t{self.trial}/{self.method}"

    def settings(self, base: PruneSettings) -> PruneSettings:
        split, metric = SPLITS[self.split]
        return replace(base, split=split, metric=metric, seed=base.seed + self.trial)


def plan_jobs(s: SuiteSettings) -> list[Job]:
    """Every job, in run order: model, split, session, trial, method (as listed)."""
    return [Job(m, sp, sess, t, meth) for m in s.models for sp in s.splits
            for sess in s.session_names() for t in range(s.trials) for meth in s.methods]


def suite_sessions(out: Path, frames: int, difficulty: str = "standard") -> Path:
    """The nine simulated sessions under OUT/sessions (written once, atomically), simulated
    with the settings of `difficulty` (a suite directory holds one difficulty)."""
    from neurogrs.simulate import simulate_suite

    target = out / "sessions"
    if target.is_dir():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=".sessions-", dir=out))
    simulate_suite(tmp, n_frames=frames, settings=SimulationSettings.for_difficulty(difficulty))
    try:
        tmp.rename(target)
    except OSError:  # another suite process got there first: same fixed seeds, same files
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ------------------------------------------------------------------ job results
def _values(v: dict) -> dict:
    """The numbers of one model (v_i from the prune report) that the tables read."""
    return {
        "structure": v["structure"], "params": v["params"], "flops": v["flops"],
        "nonzero_params": v["nonzero_params"], "distinct_values": v.get("distinct_values"),
        "effective_flops": v.get("effective_flops"), "val_metric": v["val"]["metric"], "test_metric": v["test"]["metric"],
        "test_accuracy": v["test"]["accuracy"],
        "test_balanced_accuracy": v["test"]["balanced_accuracy"],
    }


def job_record(job: Job, settings: PruneSettings, report: dict, seconds: float,
               job_dir: Path) -> dict:
    """One jobs.jsonl line from a finished prune report."""
    cand = report["candidates"][job.model]
    search = cand["search"]
    rec = {
        "key": job.key, **asdict(job), "status": "ok", "metric": settings.metric,
        "seed": settings.seed, "initial": _values(cand["initial"]),
        "pruned": _values(cand["pruned"]), "tq": None,
        "iterations": len(search["trajectory"]) - 1, "retrainings": search["retrainings"],
        "search_seconds": search["seconds"], "job_seconds": round(seconds, 3),
        "dir": str(job_dir),
    }
    if cand.get("tq") is not None:
        rec["tq"] = {**_values(cand["tq"]), "decimals": cand["tq"]["decimals"],
                     "theta": cand["tq"]["theta"], "stage_t": cand["tq"].get("stage_t")}
    return rec


def append_record(path: Path, record: dict) -> None:
    """One line, one write, under an exclusive lock (suite processes may share the file).

    After a line cut by a kill (no final newline) the record starts on a new line.
    """
    line = (json.dumps(record, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: Path) -> list[dict]:
    """Every complete line of jobs.jsonl; the last record of a key wins (a retried job)."""
    if not path.exists():
        return []
    latest: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill: that job runs again
            continue
        if isinstance(rec, dict) and "key" in rec:
            latest[rec["key"]] = rec
    return list(latest.values())


def _check_resume(out: Path, settings: SuiteSettings, resume: bool) -> None:
    """OUT/suite.json records the settings; resuming with other pruning settings is refused."""
    path = out / "suite.json"
    if path.exists():
        old = json.loads(path.read_text())
        if not resume and (out / "jobs.jsonl").exists():
            raise ConfigError(f"{out} already holds a suite (jobs.jsonl); pass --resume to "
                              "continue it or choose another --out")
        mine = settings.to_dict()
        old.setdefault("difficulty", "standard")  # suites recorded before difficulties
        for key in ("prune", "frames", "tq", "difficulty"):
            if old.get(key) != mine[key]:
                raise ConfigError(f"--resume: {out} was run with {key}={old.get(key)!r}, "
                                  f"now {mine[key]!r}; use the same settings or another --out")
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"schema": SUITE_SCHEMA, **settings.to_dict()}, indent=2) + "\n")
    tmp.replace(path)


def _run_job(job: Job, settings: SuiteSettings, sessions: Path, out: Path) -> dict:
    from neurogrs.formats import load_session
    from neurogrs.pruning.pipeline import prune_session
    from neurogrs.pruning.progress import PruneProgress

    prune = job.settings(settings.prune)
    job_dir = out / "jobs" / job.key
    t0 = time.perf_counter()
    run = prune_session(load_session(sessions / f"{job.session}.npz"), [job.model], job.method,
                        prune, job_dir, with_tq=settings.tq,
                        progress=lambda desc: PruneProgress(f"{job.key}:", stream=sys.stderr))
    if run.partial:
        raise KeyboardInterrupt  # Ctrl-C inside the search: this job is not recorded
    rec = job_record(job, prune, run.report, time.perf_counter() - t0, job_dir)
    if settings.tq_readings:
        from neurogrs.bench.tq_readings import readings_for_job

        rec["tq_readings"] = readings_for_job(rec, sessions, prune, settings.tq_readings)
    return rec


def run_suite(settings: SuiteSettings, out_dir: str | Path, *, resume: bool = False,
              log: Callable[[str], None] = lambda msg: None,
              runner: Callable[[Job, SuiteSettings, Path, Path], dict] | None = None) -> dict:
    """Run the missing jobs, append each result as it finishes; returns the tables.

    `runner` replaces the per-job function (tests); Ctrl-C stops after recording what
    finished, writes the tables of it and re-raises.
    """
    from neurogrs.bench.suite_tables import write_tables

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out, settings, resume)
    jobs_path = out / "jobs.jsonl"
    done = {r["key"] for r in read_records(jobs_path) if r.get("status") == "ok"}
    planned = plan_jobs(settings)
    todo = [j for j in planned if j.key not in done]
    log(f"{len(planned) - len(todo)} of {len(planned)} jobs already done, {len(todo)} to run")
    sessions = suite_sessions(out, settings.frames, settings.difficulty)
    runner = runner or _run_job
    try:
        for i, job in enumerate(todo, 1):
            t0 = time.perf_counter()
            try:
                rec = runner(job, settings, sessions, out)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one failing job must not lose the suite
                rec = {"key": job.key, **asdict(job), "status": "error",
                       "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc(limit=5)}
            append_record(jobs_path, rec)
            took = time.perf_counter() - t0
            if rec["status"] == "ok":
                log(f"[{i}/{len(todo)}] {job.key}: params {rec['pruned']['params']}/"
                    f"{rec['initial']['params']}, test {rec['metric']} "
                    f"{rec['initial']['test_metric']:.4f} -> {rec['pruned']['test_metric']:.4f}"
                    f", {rec['retrainings']} retrainings, {took:.1f} s")
            else:
                log(f"[{i}/{len(todo)}] {job.key}: FAILED {rec['error']}")
    finally:
        tables = write_tables(read_records(jobs_path), settings, out)
    return tables

