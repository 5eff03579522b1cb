"""The demo's online half, by reuse: `neurogrs serve` (a real subprocess on loopback,
random free ports), `neurogrs listen` scoring the predictions against the recording, and
`neurogrs replay --credit N` sending the held-out frames as fast as the service answers.
"""
from __future__ import annotations

import json
import queue
from dataclasses import dataclass, field
from pathlib import Path

from neurogrs.bench.process import EventProcess
from neurogrs.demo.settings import DemoSettings
from neurogrs.errors import TransportError

__all__ = ["OnlineRun", "run_online", "SESSION_NAME"]

SESSION_NAME = "demo"
ANY_PORT = "@tcp://127.0.0.1:*"


@dataclass
class OnlineRun:
    service: dict  # the service's 'ready' line
    replay: dict  # replay's report ('done' line)
    listen: dict  # listen's summary
    final_metrics: dict  # the service's counters at exit ('stopped' line)
    predictions: list[dict] = field(default_factory=list)  # listen --json lines

    def accounting(self) -> dict:
        """answered + skipped + reported must equal sent (what replay sent)."""
        answered = self.listen["predictions"]
        skipped = self.listen["skipped"]
        reported = sum(self.listen["errors"].values())
        sent = self.replay["sent"]
        return {"sent": sent, "answered": answered, "skipped": skipped, "reported": reported,
                "holds": answered + skipped + reported == sent}


def _drain(proc: EventProcess) -> list[str]:
    out = []
    while True:
        try:
            out.append(proc.lines.get_nowait())
        except queue.Empty:
            return out


def _cli(*args: object) -> list[str]:
    return ["-m", "neurogrs", *(str(a) for a in args)]


def run_online(artifact: Path, session_file: Path, start: int, count: int,
               settings: DemoSettings) -> OnlineRun:
    """Serve `artifact`, listen, replay frames [start, start + count) of `session_file`."""
    t = settings.timeout_s
    procs: list[EventProcess] = []
    try:
        srv = EventProcess(_cli("serve", artifact, "--engine", settings.engine,
                                "--frames", ANY_PORT, "--predictions", ANY_PORT,
                                "--metrics-port", "0", "--deadline-ms", settings.deadline_ms))
        procs.append(srv)
        ready = srv.event("ready", timeout=t)
        preds = ">" + ready["predictions"]
        lis = EventProcess(_cli("listen", "--predictions", preds, "--session", session_file,
                                "--session-name", SESSION_NAME, "--json", "--timeout", t))
        procs.append(lis)
        lis.event("listening", timeout=t)  # greeted: from now on nothing is missed
        rep = EventProcess(_cli("replay", session_file, "--frames", ">" + ready["frames"],
                                "--credit", settings.credit, "--predictions", preds,
                                "--start", start, "--max-frames", count,
                                "--session-name", SESSION_NAME, "--no-progress",
                                "--wait-timeout", t, "--answer-timeout", t))
        procs.append(rep)
        done = rep.event("done", timeout=t + count * 0.1)
        if rep.wait(t) != 0:
            raise TransportError(f"replay failed: {''.join(rep.err)[-1500:]}")
        if lis.wait(t) != 0:  # it stops at the end-of-stream of our session
            raise TransportError(f"listen failed: {''.join(lis.err)[-1500:]}")
        summary, predictions = None, []
        for line in _drain(lis):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("event") == "summary":
                summary = obj
            elif "seq" in obj:
                predictions.append(obj)
        if summary is None:
            raise TransportError(f"listen printed no summary: {''.join(lis.err)[-1500:]}")
        srv.stop(t)
        final = srv.event("stopped", timeout=5)
        return OnlineRun(ready, done, summary, final, predictions)
    finally:
        for p in reversed(procs):
            p.stop(5)
