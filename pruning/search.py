"""The loop GRS, RRS and NWM share: propose unit removals, fine-tune, accept or not.

Each algorithm is a *proposer* (which units to try removing this iteration) and a rule for
what a failed iteration means (GRS and RRS stop, NWM moves to the next layer). Everything
else is here, once:

    A0 <- metric(M0) on D_V
    loop (iteration k = 1, 2, ...):
        candidates <- propose(search)                  # [] -> stop
        fine-tune every candidate (one stacked fit_many call, inherited weights,
            fresh Adam, dropout × decay**k)
        best <- argmax metric on D_V (ties: the first candidate = the lowest layer)
        if best > τ_S · A0: accept it   else: on_reject(search) -> continue or stop

Models stay full width with masks (a candidate = the accepted masks with one more unit
off); only the result is sliced physically. Ctrl-C ends the loop with the last accepted
model and `partial=True`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from neurogrs.pruning.data import PruneData, decision_metric
from neurogrs.pruning.settings import PruneSettings
from neurogrs.pruning.surgery import full_masks, prunable_layers, slice_masked, zero_masked
from neurogrs.spec import ModelSpec

__all__ = ["Step", "PruneResult", "Search", "run_search", "search_result", "Proposer",
           "RejectRule"]

Masks = dict[int, np.ndarray]


@dataclass(frozen=True)
class Step:
    """One iteration: what was tried, what it scored, what the accepted model is now."""

    iteration: int  # 0 = the initial model
    structure: list[int]  # widths of the accepted model after this iteration
    metric: float  # D_V metric of the accepted model after this iteration
    candidate_metric: float | None  # best candidate's D_V metric (None at iteration 0)
    accepted: bool
    layer: int | None  # spec layer index of the best candidate's removal
    unit: int | None  # which unit of that layer (index in the full-width layer)
    retrains: int  # fine-tunings in this iteration
    elapsed_s: float  # since the search started
    params: int = 0  # of the accepted model, sliced
    flops: int = 0
    tried: list[tuple[int, int]] = field(default_factory=list)  # every candidate (layer, unit)
    scores: list[float] = field(default_factory=list)  # their D_V metrics after fine-tuning
    phase: int = 0  # JGRS: 1 = a jump (`tried` = its removals, in order), 2 = GRS; else 0
    no_retrain_metric: float | None = None  # JGRS jump: D_V metric before fine-tuning

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PruneResult:
    method: str
    initial: ModelSpec
    spec: ModelSpec  # full width, masked units zeroed (same function as `sliced`)
    masks: Masks
    sliced: ModelSpec  # physically narrower: what is exported
    a0: float  # D_V metric of the initial model
    metric: float  # D_V metric of the accepted model
    trajectory: list[Step] = field(default_factory=list)
    retrainings: int = 0
    seconds: float = 0.0
    partial: bool = False

    def to_dict(self) -> dict:
        return {
            "method": self.method, "a0": self.a0, "metric": self.metric,
            "structure": self.sliced.structure(), "retrainings": self.retrainings,
            "seconds": round(self.seconds, 3), "partial": self.partial,
            "masks": {str(k): np.flatnonzero(v).tolist() for k, v in self.masks.items()},
            "trajectory": [s.to_dict() for s in self.trajectory],
        }


def _widths(masks: Masks) -> dict[int, int]:
    return {layer: int(m.sum()) for layer, m in masks.items()}


class Search:
    """State a proposer may read: the accepted model, its masks, the settings, the rng.

    Every iteration is recorded by ONE list append of (step, spec, masks), so a Ctrl-C lands
    before or after it, never between the accepted model and its trajectory entry.
    """

    def __init__(self, spec: ModelSpec, settings: PruneSettings,
                 rng: np.random.Generator) -> None:
        self.a0: float | None = None  # set by run_search, or by a method that resumes it
        self.t0 = time.perf_counter()
        self.dropout_offset = 0  # dropout decay k = iteration + this offset
        self.settings = settings
        self.rng = rng
        self.layers = prunable_layers(spec)  # natural order, input side first
        self.cursor = 0  # free for proposers that walk the layers (NWM)
        self.history: list[tuple[Step, ModelSpec, Masks]] = []
        self.initial = spec
        self._start = (spec, full_masks(spec))

    @property
    def spec(self) -> ModelSpec:
        """The accepted model (full width, masked units zeroed)."""
        return self.history[-1][1] if self.history else self._start[0]

    @property
    def masks(self) -> Masks:
        return self.history[-1][2] if self.history else self._start[1]

    def active(self, layer: int) -> np.ndarray:
        """Indices of the units of `layer` still in the model."""
        return np.flatnonzero(self.masks[layer])

    def removable(self) -> list[int]:
        """Prunable layers above the minimum width, lowest first."""
        return [l for l in self.layers if int(self.masks[l].sum()) > self.settings.min_units]

    def without(self, layer: int, unit: int) -> Masks:
        masks = {k: v.copy() for k, v in self.masks.items()}
        masks[layer][unit] = False
        return masks

    def record(self, spec: ModelSpec, masks: Masks, iteration: int, metric: float,
               accepted: bool, elapsed: float, tried: list[tuple[int, int]] = (),
               scores: list[float] = (), best: int | None = None, **extra) -> Step:
        """Append the iteration's step with the model accepted after it (atomically).

        `extra`: the optional Step fields (phase, no_retrain_metric)."""
        widths = _widths(masks)
        structure = [widths.get(i, l.kernel.shape[-1]) for i, l in spec.weighted_layers()]
        sliced = slice_masked(spec, masks)
        layer, unit = tried[best] if best is not None else (None, None)
        step = Step(iteration, structure, metric,
                    scores[best] if best is not None else None, accepted, layer, unit,
                    len(scores), round(elapsed, 3), sliced.count_params(), sliced.count_flops(),
                    [tuple(t) for t in tried], list(scores), **extra)
        self.history.append((step, spec, masks))
        return step


Proposer = Callable[[Search], list[tuple[int, int]]]  # [(layer, unit)]; [] = stop
RejectRule = Callable[[Search], bool]  # after a failed iteration: continue?


def run_search(
    method: str,
    spec: ModelSpec,
    data: PruneData,
    settings: PruneSettings,
    rng: np.random.Generator,
    propose: Proposer,
    on_reject: RejectRule,
    progress: Callable[[Step], None] | None = None,
    *,
    resume: Search | None = None,
    phase: int = 0,
) -> PruneResult:
    """The shared accept/reject loop (module docstring).

    `resume`: continue a search another method started (JGRS's phase 2) from its accepted
    model, with its A0, clock, trajectory and dropout offset (`spec` is then ignored); new
    steps are tagged `phase`.
    """
    from neurogrs.pruning.fit import fit_many

    if resume is None:
        search = Search(spec, settings, rng)
        search.a0 = decision_metric(spec, data, settings.metric)
        search.record(spec, search.masks, 0, search.a0, True, 0.0)
    else:
        search = resume
    a0, t0 = search.a0, search.t0
    partial = False
    iteration = search.history[-1][0].iteration
    extra = {"phase": phase} if phase else {}
    try:
        while settings.max_iterations is None or iteration < settings.max_iterations:
            proposals = propose(search)
            if not proposals:
                break
            iteration += 1
            masks_list = [search.without(layer, unit) for layer, unit in proposals]
            seed = int(rng.integers(0, 2**31 - 1))
            trained = fit_many(search.spec, masks_list, data.x_train, data.y_train,
                               settings.fit_settings(iteration + search.dropout_offset),
                               seed=seed)
            scores = [decision_metric(c, data, settings.metric) for c in trained]
            best = int(np.argmax(scores))  # first maximum: the lowest layer wins ties
            accepted = scores[best] > settings.tau_s * a0
            if accepted:
                new_spec, new_masks, metric = trained[best], masks_list[best], scores[best]
            else:  # the accepted model stays
                new_spec, new_masks = search.spec, search.masks
                metric = search.history[-1][0].metric
            step = search.record(new_spec, new_masks, iteration, metric, accepted,
                                 time.perf_counter() - t0, proposals, scores, best, **extra)
            if progress is not None:
                progress(step)
            if not accepted and not on_reject(search):
                break
    except KeyboardInterrupt:
        partial = True
    return search_result(method, search, partial)


def search_result(method: str, search: Search, partial: bool) -> PruneResult:
    """The PruneResult of a finished (or interrupted) search: its last accepted model."""
    a0, t0, spec = search.a0, search.t0, search.initial
    steps = [h[0] for h in search.history]
    final = zero_masked(search.spec, search.masks)
    name = f"{spec.name}-{method}"
    sliced = slice_masked(final, search.masks)
    return PruneResult(
        method=method, initial=spec,
        spec=_renamed(final, name), masks=search.masks, sliced=_renamed(sliced, name),
        a0=a0, metric=steps[-1].metric, trajectory=steps,
        retrainings=sum(s.retrains for s in steps),
        seconds=time.perf_counter() - t0, partial=partial,
    )


def _renamed(spec: ModelSpec, name: str) -> ModelSpec:
    return ModelSpec(spec.preprocessing, spec.layers, spec.label_names, name,
                     metrics={}, provenance=dict(spec.provenance))
