"""The demo's offline half, by reuse: the session, `prune_session` (train the candidates,
prune, TQ, select), the C library of the selected model, per-frame timing of the C engine.
"""
from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from neurogrs.demo.settings import DemoSettings
from neurogrs.errors import ConfigError
from neurogrs.session import Session

__all__ = ["simulate", "prune", "prune_settings", "held_out", "build_c", "time_engine", "Pruned"]


def simulate(settings: DemoSettings) -> Session:
    from neurogrs.simulate import simulate_session

    return simulate_session(n_neurons=settings.neurons, n_frames=settings.frames, seed=settings.seed)


@dataclass
class Pruned:
    report: dict  # report.json of the prune run
    out: Path  # its directory (candidates, selected/, plots/)
    chosen: str  # the selected candidate's name
    initial: Path  # the chosen candidate's initial (unpruned) artifact
    selected: Path  # the selected (pruned) artifact


def prune(session: Session, settings: DemoSettings, out: Path,
          say: Callable[[str], None]) -> Pruned:
    """`prune_session` with the demo's settings; TensorFlow's and Keras' warnings are kept
    in out/warnings.log instead of the terminal (ours are shown)."""
    from neurogrs.pruning.pipeline import prune_session

    ps = prune_settings(settings)

    def progress(desc: str):
        say(f"{desc}: initial model trained, pruning")
        if sys.stderr.isatty():  # a transient bar per iteration on a terminal
            from neurogrs.pruning.progress import PruneProgress

            return PruneProgress(desc)
        return None

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = prune_session(session, list(settings.models), settings.method, ps, out,
                            with_tq=settings.tq, constraints=settings.select,
                            minimize=settings.minimize, progress=progress)
    _sort_warnings(caught, out / "warnings.log", say)
    for label, cand in run.report["candidates"].items():
        search = cand.get("search") or {}
        final = cand.get("tq") or cand.get("pruned") or cand["initial"]
        n = len(search.get("trajectory", [])) - 1
        capped = " (the cap)" if n == settings.max_iterations else ""
        say(f"{label}: {n} iterations{capped}, "
            f"{search.get('retrainings', 0)} fine-tunings in {search.get('seconds', 0):.1f} s; "
            f"params {cand['initial']['params']:,} -> {final['params']:,} "
            f"(non-zero {final['nonzero_params']:,}), val {final['val']['metric']:.3f} "
            f"(initial {cand['initial']['val']['metric']:.3f})")
    if run.partial:
        raise KeyboardInterrupt
    if run.selection_error:
        raise ConfigError(f"selection: {run.selection_error}")
    sel = run.report["selection"]
    chosen = _candidate_of(run.report, sel["chosen"])
    cand = run.report["candidates"][chosen]
    return Pruned(run.report, run.out, chosen, Path(cand["artifacts"]["initial"]), Path(sel["path"]))


def _candidate_of(report: dict, model_name: str) -> str:
    """The candidate whose pruned model is `model_name` (<label>-<method>[-tq])."""
    method = report["method"]
    for label in report["candidates"]:
        if model_name in (f"{label}-{method}", f"{label}-{method}-tq"):
            return label
    raise ConfigError(f"selected model {model_name!r} is none of the candidates "
                      f"{sorted(report['candidates'])}")


def _our_dirs() -> tuple[str, ...]:
    import neurogrs
    import neurogrs.pruning

    return tuple(str(Path(m.__file__).parent) + "/" for m in (neurogrs, neurogrs.pruning))


_OURS = _our_dirs()


def _sort_warnings(caught: list, log: Path, say: Callable[[str], None]) -> None:
    """Our warnings (raised from neurogrs code) are shown; third-party ones are logged."""
    others: dict[str, int] = {}
    for w in caught:
        text = str(w.message)
        if str(w.filename).startswith(_OURS):
            say(f"note: {text}")
        else:
            line = f"{w.category.__name__}: {text} ({w.filename}:{w.lineno})"
            others[line] = others.get(line, 0) + 1
    if others:
        log.write_text("".join(f"{n}x {line}\n" for line, n in others.items()))


def held_out(session: Session, settings: DemoSettings) -> np.ndarray:
    """Frame indices of the test part the prune run reported on (the blocked split's last
    10 % of each of `settings.blocks` chunks), sorted."""
    from neurogrs.splits import SplitSettings, make_split

    ps = prune_settings(settings)
    with warnings.catch_warnings():  # the prune stage warns about the split, once
        warnings.simplefilter("ignore")
        split = make_split(session.labels, SplitSettings(mode=ps.split, blocks=ps.blocks),
                           np.random.default_rng(ps.seed))
    return split.test


def prune_settings(settings: DemoSettings):
    from neurogrs.pruning.settings import PruneSettings

    return PruneSettings(initial_epochs=settings.epochs, retrain_epochs=settings.retrain_epochs,
                         seed=settings.seed, blocks=settings.blocks,
                         max_iterations=settings.max_iterations)


def build_c(artifact: Path, out: Path) -> str:
    """Generate and compile the C library of `artifact` (what `neurogrs codegen` does)."""
    from neurogrs.codegen import generate_library

    return str(generate_library(artifact, out))


def time_engine(artifact: Path, engine: str, frames: np.ndarray, n: int) -> dict:
    """Per-frame latency (µs) of `engine` on `artifact`, in this process, one call per frame
    over `n` frames (the test frames repeated), as `neurogrs bench inference` times them."""
    from neurogrs.bench.inference import time_calls
    from neurogrs.inference import load_engine

    eng = load_engine(artifact, engine)
    try:
        xs = np.ascontiguousarray(np.resize(frames, (n, frames.shape[1])), dtype=np.float32)
        call = eng.predict
        if getattr(eng, "stateful", False):  # temporal context: the frames are one stream
            state = eng.new_state()

            def call(f):
                return eng.predict(f, state)
        for f in xs[:50]:  # warm up
            call(f)
        ns = time_calls(call, xs)
    finally:
        close = getattr(eng, "close", None)
        if close is not None:
            close()
    return {"engine": engine, "frames": n, "median_us": float(np.median(ns)) / 1e3,
            "p99_us": float(np.percentile(ns, 99)) / 1e3}
