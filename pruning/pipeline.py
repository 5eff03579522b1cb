"""The NeuroGRS flow for one session (paper Fig. 1): per candidate model, train M_i,
prune it (GRS, RRS or NWM; then TQ when asked), measure v_i, select one design.

Writes, under the output directory:

    <model>/initial          the trained initial model (artifact)
    <model>/<method>         the pruned model, physically sliced (artifact)
    <model>/<method>-tq      after Stage T and Q: dense arrays with exact zeros (artifact)
    selected/                a copy of the selected artifact
    report.json, plots/*.png

Ctrl-C: the best accepted model so far is written, the report is marked partial and
`PruneRun.partial` is True (the CLI exits 130).
"""
from __future__ import annotations

import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neurogrs.errors import ConfigError, NeurogrsError
from neurogrs.pruning.data import evaluate, prepare
from neurogrs.pruning.report import (
    chance_warning,
    model_values,
    reductions,
    selection_values,
    write_report,
)
from neurogrs.pruning.selection import parse_constraints, parse_objective, select
from neurogrs.pruning.settings import PruneSettings
from neurogrs.session import Session
from neurogrs.spec import ModelSpec

__all__ = ["METHODS", "PruneRun", "prune_session", "check_selection"]


def _methods() -> dict[str, Callable]:
    from neurogrs.pruning.grs import grs
    from neurogrs.pruning.nwm import nwm
    from neurogrs.pruning.rrs import rrs

    return {"grs": grs, "rrs": rrs, "nwm": nwm}


METHODS = ("grs", "rrs", "nwm")


@dataclass
class PruneRun:
    report: dict
    out: Path
    partial: bool
    selection_error: str | None


def check_selection(constraints: str | None, minimize: str | None,
                    maximize: str | None) -> None:
    """Refuse bad --select/--minimize/--maximize before any training starts."""
    parse_constraints(constraints)
    if minimize and maximize:
        raise ConfigError("give --minimize or --maximize, not both")
    if minimize or maximize:
        parse_objective(minimize or maximize)


def _model_label(model: str) -> str:
    return Path(model).stem if model.endswith(".keras") else model


def _with_record(spec: ModelSpec, name: str, metrics: dict, provenance: dict) -> ModelSpec:
    return ModelSpec(spec.preprocessing, spec.layers, spec.label_names, name,
                     metrics=metrics, provenance=provenance)


def _artifact(spec: ModelSpec, data, out: Path, provenance: dict,
              keras_save: Callable | None = None) -> tuple[ModelSpec, str]:
    from neurogrs.artifact import save_artifact

    metrics = {**evaluate(spec, data), **spec.summary()}
    spec = _with_record(spec, spec.name, metrics, provenance)
    save_artifact(spec, out, keras_save=keras_save)
    return spec, str(out)


def prune_session(
    session: Session,
    models: list[str],
    method: str,
    settings: PruneSettings,
    out_dir: str | Path,
    *,
    with_tq: bool = False,
    constraints: str | None = None,
    minimize: str | None = None,
    maximize: str | None = None,
    progress: Callable[[str], Callable | None] | None = None,
    show_training: bool = False,
) -> PruneRun:
    """Run the whole flow; `progress(desc)` gives a per-iteration callback (or None)."""
    from neurogrs.pruning.tq import tq
    from neurogrs.pruning.train import TrainConfig, train
    from neurogrs.splits import SplitConfig

    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    labels = [_model_label(m) for m in models]
    if not models or len(set(labels)) != len(labels):
        raise ConfigError(f"--models must name distinct models, got {models}")
    check_selection(constraints, minimize, maximize)
    prune = _methods()[method]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base_prov = {"session_sha256": session.digest(), "session_meta": session.meta,
                 "prune_settings": settings.to_dict(), "method": method, "tq": with_tq}
    report: dict[str, Any] = {
        "partial": False, "method": method, "tq": with_tq, "settings": settings.to_dict(),
        "session": {"frames": session.n_frames, "neurons": session.n_neurons,
                    "sha256": session.digest()},
        "selection": None, "candidates": {},
    }
    finals: list[tuple[str, ModelSpec, dict, dict]] = []  # (name, spec, values, initial)
    seeds = np.random.SeedSequence(settings.seed).spawn(len(models))
    t_start = time.perf_counter()
    partial = False
    pending = None  # the current model's best result until it is complete
    try:
        for model, label, seed in zip(models, labels, seeds):
            cand: dict[str, Any] = {"model": model, "tau_s": settings.tau_s}
            report["candidates"][label] = cand
            config = TrainConfig(model=model, epochs=settings.initial_epochs,
                                 batch_size=settings.batch_size,
                                 learning_rate=settings.learning_rate, seed=settings.seed,
                                 split=SplitConfig(mode=settings.split, blocks=settings.blocks))
            trained = train(session, config, progress=show_training)
            data = prepare(session, trained.split, trained.spec)
            cand["split"] = data.sizes()
            initial = model_values(trained.spec, data, settings.metric)
            cand["initial"] = initial
            message = chance_warning(label, initial)
            if message:
                warnings.warn(message, stacklevel=2)
            keras_model = getattr(trained, "keras_model", None)
            init_spec, cand.setdefault("artifacts", {})["initial"] = _artifact(
                _with_record(trained.spec, label, {}, trained.spec.provenance), data,
                out / label / "initial",
                {**trained.spec.provenance, **base_prov, "stage": "initial"},
                keras_save=keras_model.save if keras_model is not None else None)

            callback = progress(f"{label} {method}") if progress else None
            try:
                result = prune(init_spec, data, settings, np.random.default_rng(seed), callback)
            finally:
                if callback is not None and hasattr(callback, "close"):
                    callback.close()
            cand["search"] = result.to_dict()
            pruned_prov = {**base_prov, "stage": method, "parent_hash": init_spec.content_hash(),
                           "retrainings": result.retrainings, "partial": result.partial}
            pruned, cand["artifacts"]["pruned"] = _artifact(
                result.sliced, data, out / label / method, pruned_prov)
            cand["pruned"] = model_values(pruned, data, settings.metric)
            cand["reductions"] = {"pruned": reductions(cand["pruned"], initial)}
            pending = (pruned.name, pruned, cand["pruned"], initial)
            if result.partial:
                raise KeyboardInterrupt
            if with_tq:
                tqr = tq(pruned, data, settings)
                cand["tq_details"] = tqr.to_dict()
                tq_prov = {**base_prov, "stage": "tq", "parent_hash": pruned.content_hash(),
                           "theta": tqr.theta, "decimals": tqr.decimals}
                final, cand["artifacts"]["tq"] = _artifact(
                    tqr.spec, data, out / label / f"{method}-tq", tq_prov)
                cand["tq"] = {**model_values(final, data, settings.metric),
                              "decimals": tqr.decimals, "theta": tqr.theta}
                cand["reductions"]["tq"] = reductions(cand["tq"], initial)
                pending = (final.name, final, cand["tq"], initial)
                if tqr.partial:
                    raise KeyboardInterrupt
            finals.append(pending)
            pending = None
    except KeyboardInterrupt:
        partial = True
        if pending is not None:
            finals.append(pending)
    report["partial"] = partial
    report["seconds"] = round(time.perf_counter() - t_start, 3)
    selection_error = _select(report, finals, out, constraints, minimize, maximize)
    write_report(report, out)
    try:
        from neurogrs.pruning.plots import write_plots

        write_plots(report, out)
    except (OSError, ValueError) as exc:  # a plot must never lose the report
        warnings.warn(f"plots not written: {exc}", stacklevel=2)
    return PruneRun(report, out, partial, selection_error)


def _select(report: dict, finals: list, out: Path, constraints: str | None,
            minimize: str | None, maximize: str | None) -> str | None:
    from neurogrs.artifact import save_artifact

    target = out / "selected"
    if target.exists():
        shutil.rmtree(target)
    if not finals:
        report["selection"] = {"error": "no pruned model to select from"}
        return report["selection"]["error"]
    candidates = [selection_values(name, values, initial) for name, _, values, initial in finals]
    try:
        sel = select(candidates, constraints, minimize, maximize)
    except NeurogrsError as exc:
        report["selection"] = {"error": str(exc), "constraints": constraints}
        return str(exc)
    report["selection"] = {**sel.to_dict(), "constraints": constraints,
                           "path": str(target)}
    spec = next(s for name, s, _, _ in finals if name == sel.chosen.name)
    save_artifact(spec, target)
    return None
