"""`neurogrs bench service`: replay -> service -> listener on loopback, beside a bare echo.

Each target (the bare echo, then the service) runs in its own process; the replayer runs
in its own process; the listener runs here. Runs per target: 10 Hz, `rate` frames/s (paced),
and "flood" (replay at max speed: the backlog grows until frames go stale, and every drop is
reported on error.<session>). Service only: a search of paced rates (bench/rate_search.py:
doubling until a rate fails, then bisecting; bounded, and the table says when it stopped at
its upper bound); the maximum sustained rate is the highest with nothing lost, no deadline
miss and p99 <= deadline / 4; then a soak at 80 % of that rate with the service's resident
memory read at the start, each tenth and the end, optionally with session churn beside it
(bench/churn.py: short sessions that vanish without end-of-stream). Latency = t_src
(restamped at send) -> receipt by the listener. lost = sent - predictions received;
reported = error reports received plus the `skipped` counts of predictions (accounted
drops), unaccounted = lost - reported; late = predictions the service flagged late;
misses = latency at the listener > deadline; cpu_us = the target process's CPU time per
frame handled (from /proc: robust to a shared machine).
"""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from neurogrs.settings import SettingsDict
from neurogrs.bench.process import EventProcess
from neurogrs.bench.rate_search import describe, search_max_rate
from neurogrs.errors import ConfigError
from neurogrs.inference import ENGINES
from neurogrs.stream import protocol as P
from neurogrs.stream.policy import ALL

__all__ = ["ServiceBenchSettings", "run_bench", "format_table", "soak_line", "sustained",
           "shortfalls", "serve_args", "stop_service"]

STARTUP_TIMEOUT_S = 60.0
ANY_PORT = "@tcp://127.0.0.1:*"  # targets bind ephemeral loopback ports (never the defaults)
# "sustained": nothing lost or late AND p99 within a quarter of the deadline, i.e. no
# backlog building up (a 2 s step can pass while a queue grows that a soak would not survive)
SUSTAINED_P99_FRACTION = 0.25
SOAK_MARGIN = 0.8  # soak at 80 % of the maximum sustained rate (the machine is shared)
SEARCH_STEP = 500  # rates tried are multiples of this (frames/s)
SEARCH_RESOLUTION = 0.1  # bisect until the highest pass is within 10 % of the first failure
SEARCH_MAX_RUNS = 14  # runs in the search at most (2 s each, plus start-up)
CRITERION = "paced, 0 lost, 0 misses, p99 <= deadline/4"


@dataclass(frozen=True)
class ServiceBenchSettings(SettingsDict):
    artifact: str
    engine: str = "c"
    duration_s: float = 10.0
    rate: float = 1000.0
    slow_rate: float = 10.0
    max_frames: int = 50_000
    soak_frames: int = 1_000_000
    deadline_ms: float = 100.0
    soak_rate: float | None = None  # frames/s; None: 80 % of the maximum sustained rate
    search_start: int = 2000  # frames/s: the first rate of the max-sustained search
    search_upper: int = 160_000  # frames/s: the search stops here (and says so)
    churn_sessions: int = 0  # short sessions vanishing without end-of-stream during the soak
    churn_frames: int = 10  # frames each churn session sends
    churn_restart_every: int = 0  # every N-th churn session restarts (new run id, seq 0)
    session_idle_s: float | None = None  # passed to `serve --session-idle-s` (None: its default)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"engine {self.engine!r}: choose one of {ENGINES}")
        if not 0 < self.duration_s <= 3600:
            raise ConfigError(f"duration_s must be in (0, 3600], got {self.duration_s}")
        if not 0 < self.rate <= 1e6 or not 0 < self.slow_rate <= 1e6:
            raise ConfigError("rates must be in (0, 1e6] frames/s")
        if self.soak_rate is not None and not 0 < self.soak_rate <= 1e6:
            raise ConfigError(f"soak_rate must be in (0, 1e6] frames/s, got {self.soak_rate}")
        if self.max_frames < 1 or self.soak_frames < 0:
            raise ConfigError("max_frames must be >= 1 and soak_frames >= 0")
        if not SEARCH_STEP <= self.search_start <= self.search_upper <= 10_000_000:
            raise ConfigError(f"search rates must satisfy {SEARCH_STEP} <= search_start "
                              f"({self.search_start}) <= search_upper ({self.search_upper}) "
                              "<= 1e7 frames/s")
        if not 0 <= self.churn_restart_every <= 10_000_000:
            raise ConfigError(f"churn_restart_every must be in [0, 1e7], got "
                              f"{self.churn_restart_every}")
        if not 0 <= self.churn_sessions <= 10_000_000 or not 1 <= self.churn_frames <= 100_000:
            raise ConfigError(f"churn_sessions must be in [0, 1e7] and churn_frames in "
                              f"[1, 1e5], got {self.churn_sessions}, {self.churn_frames}")
        if self.session_idle_s is not None and not (
                isinstance(self.session_idle_s, (int, float))
                and not isinstance(self.session_idle_s, bool)
                and 0.01 <= self.session_idle_s <= 7 * 86400):
            raise ConfigError(f"session_idle_s must be None or in [0.01, 604800] s, got "
                              f"{self.session_idle_s!r}")


def _session_file(n_inputs: int, directory: Path) -> Path:
    from neurogrs.formats import save_session
    from neurogrs.session import Session

    rng = np.random.default_rng(0)
    T = 2000
    traces = rng.normal(size=(T, n_inputs)).astype(np.float32)
    return save_session(Session(traces, rng.integers(0, 2, T), fs=10.0), directory / "bench.npz")


def _one_run(target: dict, session: Path, name: str, speed: str, frames: int, deadline_s: float,
             timeout_s: float, on_first: Any = None, on_tenth: Any = None) -> dict:
    """Replay `frames` frames at `speed` through `target`; listen here; return the stats.

    on_first(): called once after the first min(10,000, frames/10) predictions (warmed up);
    on_tenth(k): called after k tenths of `frames` have been answered (k = 1..10)."""
    tenth = max(1, frames // 10)
    from neurogrs.stream.client import Subscriber

    lat: list[int] = []
    reported = late = skipped = 0
    errors: dict[str, int] = {}
    with Subscriber(">" + target["predictions"], name, rcvhwm=2_000_000) as sub:
        sub.wait_hello(10)
        rep = EventProcess(["-m", "neurogrs.bench._entry", "replay", str(session), "--frames",
                     ">" + target["frames"], "--speed", speed, "--restamp", "--loop",
                     "--max-frames", str(frames), "--session-name", name, "--no-progress"])
        end = None
        first_ns = last_ns = 0
        deadline = time.monotonic() + timeout_s
        while end is None and time.monotonic() < deadline:
            msg = sub.recv(1.0)
            if msg is None:
                if rep.p.poll() not in (None, 0):
                    break
                continue
            if isinstance(msg, P.Prediction):
                lat.append(sub.received_ns - msg.t_src_ns)
                reported += msg.skipped  # conflated frames this prediction superseded
                skipped += msg.skipped
                late += bool(msg.late)
                last_ns = sub.received_ns
                if not first_ns:
                    first_ns = last_ns
                if on_first is not None and len(lat) == min(10_000, frames // 10 or 1):
                    on_first()
                if on_tenth is not None and len(lat) % tenth == 0:
                    on_tenth(len(lat) // tenth)
            elif isinstance(msg, P.ErrorReport):
                reported += 1
                errors[msg.reason] = errors.get(msg.reason, 0) + 1
            elif isinstance(msg, P.EndOfStream):
                end = msg
        try:
            done = rep.event("done", 30)
        finally:
            rep.stop()
    a = np.asarray(lat, dtype=np.int64) / 1e9
    sent = int(done["sent"])
    q = np.percentile(a, [50, 99, 99.9]) if a.size else [float("nan")] * 3
    span = (last_ns - first_ns) / 1e9
    return {"run": name, "sent": sent, "received": int(a.size), "lost": sent - int(a.size),
            "reported": reported, "unaccounted": sent - int(a.size) - reported,
            "misses": int(np.count_nonzero(a > deadline_s)), "late": late,
            "skipped": skipped, "errors": errors,
            "p50_ms": q[0] * 1e3, "p99_ms": q[1] * 1e3, "p999_ms": q[2] * 1e3,
            "max_ms": float(a.max() * 1e3) if a.size else float("nan"),
            "rate_fps": (a.size - 1) / span if span > 0 else float("nan"),
            "replay_rate_fps": done["rate_fps"], "hwm_waits": done["hwm_waits"]}


def shortfalls(r: dict, rate: float, deadline_ms: float) -> list[str]:
    """Why a paced run at `rate` was not sustained (empty: it was): something lost or
    late, a backlog building up (p99 over a quarter of the deadline), or the replayer not
    reaching the rate."""
    out = []
    if r["lost"]:
        out.append(f"lost {r['lost']}")
    if r["misses"]:
        out.append(f"deadline misses {r['misses']}")
    if not r["p99_ms"] <= SUSTAINED_P99_FRACTION * deadline_ms:
        out.append(f"p99 {r['p99_ms']:.1f} ms > {SUSTAINED_P99_FRACTION * deadline_ms:g} ms")
    if not r["replay_rate_fps"] >= 0.95 * rate:
        out.append(f"replayer reached {r['replay_rate_fps']:.0f} frames/s")
    return out


def sustained(r: dict, rate: float, deadline_ms: float) -> bool:
    r["shortfalls"] = shortfalls(r, rate, deadline_ms)
    return not r["shortfalls"]


def _soak(cfg: ServiceBenchSettings, proc: EventProcess, target: dict, run: Any, soak_rate: int,
          n_inputs: int) -> dict:
    """The soak run, RSS sampled at the start, each tenth and the end; with churn sessions
    beside it once the soak's own session is established (churn must not take its place)."""
    rss: dict[str, int] = {"start": proc.rss_bytes()}
    tenths: list[float] = []  # RSS after each tenth of the soak: a trend shows
    churn: list[EventProcess] = []

    def on_first() -> None:
        rss["start"] = proc.rss_bytes()
        if cfg.churn_sessions:
            left_s = max(1.0, 0.9 * (cfg.soak_frames - min(10_000, cfg.soak_frames // 10))
                         / soak_rate)
            churn.append(EventProcess([
                "-m", "neurogrs.bench.churn", "--frames", target["frames"],
                "--predictions", target["predictions"], "--sessions", str(cfg.churn_sessions),
                "--frames-per-session", str(cfg.churn_frames), "--duration", f"{left_s:.1f}",
                "--inputs", str(n_inputs), "--restart-every", str(cfg.churn_restart_every)]))

    try:
        r = run(f"soak@{soak_rate}", float(soak_rate), cfg.soak_frames, on_first=on_first,
                on_tenth=lambda k: tenths.append(proc.rss_bytes() / 2**20))
        if churn:
            r["churn"] = churn[0].event("done", 120)
    finally:
        for c in churn:
            c.stop()
    r["rss_start_mb"] = rss["start"] / 2**20
    r["rss_end_mb"] = proc.rss_bytes() / 2**20
    r["rss_tenths_mb"] = tenths
    return r


def serve_args(cfg: ServiceBenchSettings) -> list[str]:
    """The `serve` command line of the service under test (ephemeral loopback ports)."""
    args = ["-m", "neurogrs.bench._entry", "serve", cfg.artifact, "--engine", cfg.engine,
            "--frames", ANY_PORT, "--predictions", ANY_PORT, "--metrics-port", "-1",
            "--policy", ALL, "--deadline-ms", str(cfg.deadline_ms)]
    if cfg.session_idle_s is not None:
        args += ["--session-idle-s", f"{cfg.session_idle_s:g}"]
    return args


def _start_target(kind: str, cfg: ServiceBenchSettings) -> EventProcess:
    if kind == "echo":
        return EventProcess(["-m", "neurogrs.bench.echo", "--frames", ANY_PORT,
                             "--predictions", ANY_PORT])
    return EventProcess(serve_args(cfg))


def stop_service(proc: EventProcess, timeout_s: float = 10.0) -> tuple[int | None, dict | None]:
    """SIGTERM the service; its exit code and final metrics (its "stopped" event: sessions
    expired, oversized messages, ...), None when it printed none."""
    from neurogrs.errors import TransportTimeout

    code = proc.stop(timeout_s)
    try:
        final = proc.event("stopped", 2.0) if code == 0 else None
    except TransportTimeout:
        final = None
    return code, final


def run_bench(cfg: ServiceBenchSettings, log: TextIO = sys.stderr) -> dict:
    from neurogrs.artifact import load_artifact

    art = load_artifact(cfg.artifact)
    deadline_s = cfg.deadline_ms / 1e3
    results: dict[str, Any] = {"config": cfg.__dict__, "runs": [], "ladder": [], "soak": None,
                               "max_sustained_fps": None, "search": None}
    plan = [("10hz", cfg.slow_rate, max(2, int(cfg.slow_rate * cfg.duration_s))),
            (f"{cfg.rate:g}fps", cfg.rate, max(2, int(cfg.rate * cfg.duration_s))),
            ("flood", None, cfg.max_frames)]
    step_s = min(cfg.duration_s, 2.0)
    with tempfile.TemporaryDirectory(prefix="neurogrs-bench-") as tmp:
        session = _session_file(art.spec.n_inputs, Path(tmp))
        for kind in ("echo", "service"):
            proc = _start_target(kind, cfg)
            try:
                target = proc.event("ready", STARTUP_TIMEOUT_S)
                n_run = 0

                def run(label: str, rate: float | None, frames: int, ladder: bool = False,
                        **kw: Any) -> dict:
                    nonlocal n_run
                    n_run += 1
                    speed = "max" if rate is None else f"{rate / 10.0:g}"  # session fs = 10 Hz
                    timeout = 60 + (frames / rate if rate else frames / 500)
                    print(f"bench: {kind} {label} ({frames} frames)", file=log, flush=True)
                    cpu0 = proc.cpu_seconds()
                    r = _one_run(target, session, f"{kind}{n_run}", speed, frames, deadline_s,
                                 timeout, **kw)
                    handled = max(1, r["received"] + r["reported"])
                    r["cpu_us"] = (proc.cpu_seconds() - cpu0) / handled * 1e6
                    r["target"], r["run"] = kind, label
                    if ladder:
                        results["ladder"].append(r)
                    return r

                for label, rate, frames in plan:
                    results["runs"].append(run(label, rate, frames))
                if kind != "service":
                    continue
                search = search_max_rate(
                    lambda rate: sustained(run(f"{rate}fps", float(rate), int(rate * step_s),
                                               ladder=True), rate, cfg.deadline_ms),
                    cfg.search_start, cfg.search_upper, step=SEARCH_STEP,
                    resolution=SEARCH_RESOLUTION, max_trials=SEARCH_MAX_RUNS)
                results["search"] = search.to_dict()
                results["max_sustained_fps"] = best = search.best
                if cfg.soak_frames and (best or cfg.soak_rate):
                    soak_rate = int(cfg.soak_rate or best * SOAK_MARGIN)
                    results["soak"] = _soak(cfg, proc, target, run, soak_rate,
                                            art.spec.n_inputs)
            finally:
                if kind == "service":
                    code, results["service_final"] = stop_service(proc)
                    if code != 0:
                        print(f"bench: service exited {code}: {''.join(proc.err)[-800:]}",
                              file=log)
                else:
                    proc.stop()
    return results


def format_table(results: dict) -> str:
    cols = ("target", "run", "sent", "lost", "reported", "late", "misses", "p50_ms", "p99_ms",
            "p999_ms", "max_ms", "rate_fps", "cpu_us")
    rows = list(results["runs"]) + list(results.get("ladder", [])) + (
        [results["soak"]] if results.get("soak") else [])
    lines = ["  ".join(f"{c:>9}" for c in cols)]
    for r in rows:
        cells = (r.get(c, "") for c in cols)
        lines.append("  ".join(f"{v:>9.3f}" if isinstance(v, float) else f"{v!s:>9}"
                               for v in cells))
    echo = {r["run"]: r for r in results["runs"] if r["target"] == "echo"}
    svc = {r["run"]: r for r in results["runs"] if r["target"] == "service"}
    for run in svc:
        if run in echo and echo[run]["p50_ms"] > 0:
            lines.append(f"service/echo p50 at {run}: {svc[run]['p50_ms'] / echo[run]['p50_ms']:.2f}x")
    if results.get("search") is not None:
        lines.append(describe(results["search"], CRITERION))
        first = results["search"]["first_failure"]
        why = [r for r in results.get("ladder", []) if r["run"] == f"{first}fps"
               and r.get("shortfalls")]
        if why:
            lines.append(f"  at {first} frames/s: " + ", ".join(why[0]["shortfalls"]))
    else:
        lines.append(f"max sustained ({CRITERION}): {results.get('max_sustained_fps')} frames/s")
    busy = [r for r in results.get("ladder", []) if r["target"] == "service"] or [
        r for r in results["runs"] if r["target"] == "service"]
    if busy:
        r = max(busy, key=lambda r: r["received"])
        lines.append(f"service CPU per frame (at {r['run']}): {r['cpu_us']:.1f} us -> one-core "
                     f"capacity ~{1e6 / r['cpu_us']:.0f} frames/s")
    s = results.get("soak")
    if s:
        lines.append(soak_line(s))
        if s.get("rss_tenths_mb"):
            lines.append("soak: service RSS after each tenth (MiB): "
                         + " ".join(f"{x:.1f}" for x in s["rss_tenths_mb"]))
        if s.get("churn"):
            c = s["churn"]
            refused = ", ".join(f"{k} {v}" for k, v in sorted(c["errors"].items())) or "none"
            lines.append(f"soak churn: {c['sessions']} sessions never ended, "
                         f"{c.get('restarts', 0)} of them restarted from seq 0 (new run id): "
                         f"{c['sent']} frames sent, {c['answered']} answered, refused: "
                         f"{refused}, unanswered {c['unanswered']}")
    final = results.get("service_final")
    if final:
        idle = results["config"].get("session_idle_s")
        lines.append(f"service at exit: {final.get('sessions_expired', 0):g} sessions expired "
                     f"(--session-idle-s {'default' if idle is None else f'{idle:g}'}), "
                     f"{final.get('source_restarts', 0):g} source restarts")
    c = results["config"]
    lines.append(f"engine={c['engine']} deadline={c['deadline_ms']:g} ms; latency = t_src "
                 "(restamped at send) -> received by the listener; lost = sent - received "
                 "= reported (error reports + skipped) + unaccounted; late = flagged by the "
                 "service; misses = latency at the listener > deadline")
    return "\n".join(lines)


def soak_line(s: dict) -> str:
    """Every kind of miss in the soak, not "lost" alone."""
    errors = s.get("errors") or {}
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
    return (f"soak: {s['sent']} frames, {s.get('received', s['sent'] - s['lost'])} answered, "
            f"lost {s['lost']} (error reports {sum(errors.values())}"
            + (f": {reasons}" if reasons else "")
            + f"; skipped {s.get('skipped', 0)}; unaccounted {s.get('unaccounted', 0)}), "
            f"late {s.get('late', 0)}, deadline misses {s['misses']}, "
            f"{s['rate_fps']:.0f} frames/s, service RSS {s['rss_start_mb']:.1f} -> "
            f"{s['rss_end_mb']:.1f} MiB")
