"""The NeuroGRS flow for one session (paper Fig. 1): per candidate model, train M_i,
prune it (GRS, RRS, NWM or JGRS; then TQ when asked), measure v_i, select one design.

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
from typing import Any, Callable, Sequence

import numpy as np

from neurogrs.errors import ConfigError, NeurogrsError
from neurogrs.pruning.data import evaluate, prepare
from neurogrs.pruning.methods import method_function, method_names
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


METHODS = method_names()  # the registry in pruning/methods.py: one line per method


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


def _check_models(models: list[str]) -> list[str]:
    """Refuse unknown names and missing .keras files before any training; labels back."""
    from neurogrs.pruning.train import TrainSettings

    labels = []
    for model in models:
        TrainSettings(model=model)  # a zoo name or a .keras path, else ConfigError
        if model.endswith(".keras") and not Path(model).is_file():
            raise ConfigError(f"--models: {model}: no such file")
        labels.append(_model_label(model))
    if not models or len(set(labels)) != len(labels):
        raise ConfigError(f"--models must name distinct models, got {models}")
    return labels


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


@dataclass
class _Flow:
    """What every model's steps share: the session, settings, method, output, provenance."""

    session: Session
    settings: PruneSettings
    method: str
    out: Path
    provenance: dict

    def initial(self, model: str, label: str, cand: dict, show_training: bool):
        """Train M_i, write its artifact; returns (spec, data, v_i)."""
        from neurogrs.pruning.train import TrainSettings, train
        from neurogrs.splits import SplitSettings

        s = self.settings
        config = TrainSettings(model=model, epochs=s.initial_epochs, batch_size=s.batch_size,
                             learning_rate=s.learning_rate, seed=s.seed,
                             split=SplitSettings(mode=s.split, blocks=s.blocks))
        trained = train(self.session, config, progress=show_training)
        data = prepare(self.session, trained.split, trained.spec)
        cand["split"] = data.sizes()
        values = cand["initial"] = model_values(trained.spec, data, s.metric)
        message = chance_warning(label, values)
        if message:
            warnings.warn(message, stacklevel=3)
        keras_model = getattr(trained, "keras_model", None)  # absent once train() uses fit
        spec, cand["artifacts"]["initial"] = _artifact(
            _with_record(trained.spec, label, {}, trained.spec.provenance), data,
            self.out / label / "initial",
            {**trained.spec.provenance, **self.provenance, "stage": "initial"},
            keras_save=keras_model.save if keras_model is not None else None)
        return spec, data, values

    def structured(self, label: str, spec: ModelSpec, data, initial: dict, cand: dict,
                   rng: np.random.Generator, callback):
        """GRS / RRS / NWM / JGRS, then the sliced artifact; returns (pruned spec, partial)."""
        result = method_function(self.method)(spec, data, self.settings, rng, callback)
        cand["search"] = result.to_dict()
        prov = {**self.provenance, "stage": self.method, "parent_hash": spec.content_hash(),
                "retrainings": result.retrainings, "partial": result.partial}
        pruned, cand["artifacts"]["pruned"] = _artifact(result.sliced, data,
                                                         self.out / label / self.method, prov)
        cand["pruned"] = model_values(pruned, data, self.settings.metric)
        cand["reductions"] = {"pruned": reductions(cand["pruned"], initial)}
        return pruned, result.partial

    def unstructured(self, label: str, pruned: ModelSpec, data, initial: dict, cand: dict):
        """Stage T and Q, then the artifact; returns (TQ spec, partial)."""
        from neurogrs.pruning.tq import tq

        result = tq(pruned, data, self.settings)
        cand["tq_details"] = result.to_dict()
        prov = {**self.provenance, "stage": "tq", "parent_hash": pruned.content_hash(),
                "stage_t": result.stage_t, "theta": result.theta, "decimals": result.decimals}
        final, cand["artifacts"]["tq"] = _artifact(result.spec, data,
                                                    self.out / label / f"{self.method}-tq", prov)
        cand["tq"] = {**model_values(final, data, self.settings.metric),
                      "decimals": result.decimals, "theta": result.theta,
                      "stage_t": result.stage_t}
        cand["reductions"]["tq"] = reductions(cand["tq"], initial)
        return final, result.partial


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
    eval_sessions: Sequence[tuple[str, Session]] = (),
) -> PruneRun:
    """Run the whole flow; `progress(desc)` gives a per-iteration callback (or None).

    `eval_sessions`: (name, session) pairs of other sessions of the same neurons; every
    written artifact is scored on them *after* selection (report["cross_session"]): they
    are reported, never used for any decision.
    """
    method_function(method)  # ConfigError naming the registered methods
    labels = _check_models(models)
    check_selection(constraints, minimize, maximize)
    for name, other in eval_sessions:  # before any training
        if other.n_neurons != session.n_neurons:
            raise ConfigError(f"--eval-session {name} has {other.n_neurons} neurons, the "
                              f"session pruned {session.n_neurons}: it must record the same "
                              "neurons")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    flow = _Flow(session, settings, method, out, {
        "session_sha256": session.digest(), "session_meta": session.meta,
        "prune_settings": settings.to_dict(), "method": method, "tq": with_tq})
    report: dict[str, Any] = {
        "partial": False, "method": method, "tq": with_tq, "settings": settings.to_dict(),
        "session": {"frames": session.n_frames, "neurons": session.n_neurons,
                    "sha256": session.digest()},
        "selection": None, "candidates": {},
    }
    finals: list[tuple[ModelSpec, dict, dict]] = []  # (final spec, its v_i, initial v_i)
    pending = None  # the current model's best result until it is complete
    seeds = np.random.SeedSequence(settings.seed).spawn(len(models))
    t_start = time.perf_counter()
    try:
        for model, label, seed in zip(models, labels, seeds):
            cand: dict[str, Any] = {"model": model, "tau_s": settings.tau_s, "artifacts": {}}
            report["candidates"][label] = cand
            spec, data, initial = flow.initial(model, label, cand, show_training)
            callback = progress(f"{label} {method}") if progress else None
            try:
                final, partial = flow.structured(label, spec, data, initial, cand,
                                                 np.random.default_rng(seed), callback)
            finally:
                if callback is not None and hasattr(callback, "close"):
                    callback.close()
            pending = (final, cand["pruned"], initial)
            if not partial and with_tq:
                final, partial = flow.unstructured(label, final, data, initial, cand)
                pending = (final, cand["tq"], initial)
            if partial:
                raise KeyboardInterrupt
            finals.append(pending)
            pending = None
    except KeyboardInterrupt:
        report["partial"] = True
        if pending is not None:
            finals.append(pending)
    report["seconds"] = round(time.perf_counter() - t_start, 3)
    selection_error = _select(report, finals, out, constraints, minimize, maximize)
    if eval_sessions:  # after every decision was taken
        report["cross_session"] = _cross_session(report, eval_sessions)
    write_report(report, out)
    try:
        from neurogrs.pruning.plots import write_plots

        write_plots(report, out)
    except (OSError, ValueError) as exc:  # a plot must never lose the report
        warnings.warn(f"plots not written: {exc}", stacklevel=2)
    return PruneRun(report, out, report["partial"], selection_error)


def _select(report: dict, finals: list, out: Path, constraints: str | None,
            minimize: str | None, maximize: str | None) -> str | None:
    from neurogrs.artifact import save_artifact

    target = out / "selected"
    if target.exists():
        shutil.rmtree(target)
    if not finals:
        report["selection"] = {"error": "no pruned model to select from"}
        return report["selection"]["error"]
    candidates = [selection_values(spec.name, values, initial) for spec, values, initial in finals]
    try:
        sel = select(candidates, constraints, minimize, maximize)
    except NeurogrsError as exc:
        report["selection"] = {"error": str(exc), "constraints": constraints}
        return str(exc)
    report["selection"] = {**sel.to_dict(), "constraints": constraints,
                           "path": str(target)}
    spec = next(spec for spec, _, _ in finals if spec.name == sel.chosen.name)
    save_artifact(spec, target)
    return None


def _cross_session(report: dict, eval_sessions: Sequence[tuple[str, Session]]) -> dict:
    """Every artifact written (initial, pruned, TQ; the selected one) on the other sessions."""
    from neurogrs.artifact import load_artifact
    from neurogrs.crosseval import cross_evaluate

    out: dict[str, Any] = {"reported_only": True,
                           "sessions": [name for name, _ in eval_sessions], "candidates": {}}
    for label, cand in report["candidates"].items():
        out["candidates"][label] = {
            kind: cross_evaluate(load_artifact(path).spec, eval_sessions)
            for kind, path in cand.get("artifacts", {}).items()}
    chosen = (report.get("selection") or {}).get("path")
    if chosen and Path(chosen).is_dir():
        out["selected"] = cross_evaluate(load_artifact(chosen).spec, eval_sessions)
    return out
