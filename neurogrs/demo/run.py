"""`run_demo`: the stages in order, one progress line each with its elapsed time.

    session -> train + prune + TQ + select (neurogrs.pruning.pipeline) -> C library of the
    selected model (neurogrs.codegen) -> per-frame timing of original and pruned model in
    the C engine -> service + listener + credit replay of the held-out part (subprocesses)
    -> table, report.html, results.json
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from neurogrs.demo import offline, report
from neurogrs.demo.online import run_online
from neurogrs.demo.settings import DemoSettings
from neurogrs.errors import TransportError
from neurogrs.formats import load_session
from neurogrs.session import Session

__all__ = ["run_demo", "STAGES"]

STAGES = 6


class _Stages:
    """Prints `[k/6] what ...` when a stage starts and `      done in X s` when it ends."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.k = 0
        self.t0 = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, text: str) -> Iterator[None]:
        self.k += 1
        self.echo(f"[{self.k}/{STAGES}] {text}")
        t = time.perf_counter()
        yield
        self.seconds[name] = dt = time.perf_counter() - t
        self.echo(f"      done in {dt:.1f} s (total {time.perf_counter() - self.t0:.1f} s)")

    def say(self, text: str) -> None:
        self.echo(f"      {text}")


def _final(report_: dict, chosen: str) -> tuple[dict, str]:
    cand = report_["candidates"][chosen]
    if report_["tq"] and cand.get("tq"):
        return cand["tq"], f"{report_['method']}+TQ"
    return cand["pruned"], report_["method"]


def _cap(settings: DemoSettings) -> str:
    if settings.max_iterations is None:
        return "searches run to their own stopping rule"
    return f"at most {settings.max_iterations} iterations per search"


def _held_out_file(session: Session, session_file: Path, settings: DemoSettings,
                   out: Path) -> tuple[Path, int, int, str]:
    """What replay sends: (file, first frame, count, description). A contiguous test part
    is replayed from the session itself (seq = frame index); a test part over several
    blocks is written as held_out.npz (its frames in order) and replayed whole."""
    from neurogrs.formats import save_session

    test = offline.held_out(session, settings)
    if np.array_equal(test, np.arange(test[0], test[0] + test.size)):
        return session_file, int(test[0]), int(test.size), f"frames {test[0]}..{test[-1]}"
    held = Session(session.traces[test], session.labels[test], session.fs,
                   meta={**session.meta, "held_out_of": str(session_file)})
    path = save_session(held, out / "held_out.npz")
    return path, 0, int(test.size), (f"{test.size} frames in {settings.blocks} blocks -> {path} "
                                     "(replayed whole)")


def run_demo(settings: DemoSettings, session: Session | None = None, session_text: str | None = None,
             echo: Callable[[str], None] = print) -> dict:
    """Run every stage; returns the results (also in out/results.json). `session` None:
    simulate one from the settings."""
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    st = _Stages(echo)
    with st.stage("session", "session" if session is not None else
                  f"simulate a {settings.neurons}-neuron, {settings.frames:,}-frame session"):
        if session is None:
            session = offline.simulate(settings)
            session_text = (f"simulated session: {session.n_neurons} neurons x "
                            f"{session.n_frames:,} frames at {session.fs:g} Hz (seed {settings.seed})")
        from neurogrs.formats import save_session

        session_file = save_session(session, out / "session.npz")
        replay_file, start, count, test_text = _held_out_file(session, session_file, settings, out)
        st.say(f"{session_text} -> {session_file}")
        st.say(f"held-out test part: {test_text}")

    with st.stage("prune", f"train {', '.join(settings.models)} ({settings.epochs} epochs), prune "
                           f"({settings.method.upper()}{' + TQ' if settings.tq else ''}, fine-tuning "
                           f"{settings.retrain_epochs} epochs per candidate, "
                           f"{_cap(settings)}), select"):
        pruned = offline.prune(session, settings, out, st.say)
        final, stage_label = _final(pruned.report, pruned.chosen)
        st.say(f"selected {pruned.chosen} {stage_label} ({pruned.report['selection'].get('constraints') or 'no constraint'}"
               f"; minimise {settings.minimize or 'nothing'}) -> {pruned.selected}")

    with st.stage("codegen", "generate and compile the C library of the selected model"):
        st.say(offline.build_c(pruned.selected, out / "selected_c").splitlines()[0])

    replayed = load_session(replay_file)
    test_frames = replayed.traces[start:start + count]
    with st.stage("timing", f"per-frame inference in the C engine, original and pruned "
                            f"({settings.timing_frames:,} frames each, in process)"):
        us = {"original": offline.time_engine(pruned.initial, "c", test_frames, settings.timing_frames),
              "pruned": offline.time_engine(pruned.selected, "c", test_frames, settings.timing_frames)}
        st.say(f"original {us['original']['median_us']:.2f} µs, pruned {us['pruned']['median_us']:.2f} µs (median)")

    with st.stage("online", f"serve ({settings.engine} engine, loopback, free ports), listen, replay "
                            f"the {count} held-out frames (--credit {settings.credit})"):
        online = run_online(pruned.selected, replay_file, start, count, settings)
        acc = online.accounting()
        st.say(f"{acc['answered']} answered at {online.replay['rate_fps']:,.0f} frames/s")
        if not acc["holds"]:
            raise TransportError(f"frames unaccounted for: {acc}")

    with st.stage("report", "table, report.html, results.json"):
        initial = pruned.report["candidates"][pruned.chosen]["initial"]
        keys = ("params", "nonzero_params", "flops", "effective_flops")
        r = {
            "session_text": session_text, "models": list(settings.models),
            "method": settings.method, "tq": settings.tq, "chosen": pruned.chosen,
            "pruned_label": f"{pruned.chosen} {stage_label}", "fs": session.fs,
            "seq_is_frame_index": replay_file == session_file,
            "sizes": {"original": {k: initial[k] for k in keys}, "pruned": {k: final[k] for k in keys}},
            "inference_us": us,
            "offline": {"accuracy": final["test"]["accuracy"],
                        "balanced_accuracy": final["test"]["balanced_accuracy"],
                        "original_accuracy": initial["test"]["accuracy"]},
            "online": {k: online.listen.get(k) for k in ("accuracy", "balanced_accuracy",
                                                         "baseline_accuracy")},
            "latency_s": online.listen["latency_s"],
            "deadline_misses": online.listen["late"],
            "service_counters": online.final_metrics,
            "deadline_ms": settings.deadline_ms, "service_engine": settings.engine,
            "credit": settings.credit, "accounting": acc,
            "frames_per_s": online.replay["rate_fps"], "replay": online.replay,
            "settings": settings.to_dict(),
            "settings_note": (f"Demo settings: initial training {settings.epochs} epochs; "
                              f"fine-tuning {settings.retrain_epochs} epochs per pruning candidate "
                              f"(the paper: 50) and {_cap(settings)}, to keep the run short; "
                              f"blocked split 8:1:1 over {settings.blocks} block(s), decisions on "
                              "the validation part, accuracy reported on the test part."),
        }
        plots = report.write_plots(r, online.predictions, replayed.labels,
                                   list(session.meta.get("label_names") or []), out / "plots")
        method = pruned.report["method"]
        trajectories = [out / "plots" / f"{m}_{method}.png" for m in pruned.report["candidates"]]
        r["stage_seconds"] = dict(st.seconds)
        html_path = out / "report.html"
        report.write_html(r, pruned.report, [p for p in trajectories if p.is_file()],
                          out / "plots" / "candidates.png", plots, html_path)
    r["stage_seconds"] = dict(st.seconds)
    r["seconds"] = time.perf_counter() - st.t0
    report.write_json(r, out / "results.json")
    report.write_html(r, pruned.report, [p for p in trajectories if p.is_file()],
                      out / "plots" / "candidates.png", plots, html_path)  # with every stage timed
    echo("")
    echo(report.format_table(r))
    echo("")
    echo(r["settings_note"])
    echo(f"report  {html_path} (self-contained, opens offline)")
    echo(f"outputs {out}/: session.npz, <model>/initial|{method}|{method}-tq, selected/, "
         "selected_c/, report.json, results.json, plots/")
    echo(f"total   {r['seconds']:.1f} s")
    return r
