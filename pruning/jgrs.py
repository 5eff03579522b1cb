"""JGRS, GRS with a jump mechanism (algorithms.md §8) [reconstruction].

The JGRS paper's idea is public (jumps bypass the retraining of intermediate models while
accuracy is insensitive to pruning, then exact GRS), its phases, jump sizes and thresholds
are not, and neither is its code: the rules below are our reconstruction, with the choices
a prototype measured (§8).

    A0 <- metric(M0) on D_V;  J <- J0 = max(2, round(0.1 × hidden units above the minimum))
    phase 1, rule "doubling" (the default):
        J <- min(J, units above the minimum)
        jump: J greedy single-unit removals WITHOUT retraining, each the best of every
              active unit of every layer above the minimum by its D_V metric (ties: the
              lowest layer, then the lowest unit); fine-tune the result ONCE
        accept if metric > τ_S · A0, then J <- J·2 if the no-retrain drop (vs the accepted
              model before the jump) was < δ, else J // 2;  reject: J <- J // 2
        J < 2 -> phase 2
    phase 1, rule "tolerance" (the variant): a jump goes on removing while the no-retrain
        metric stays ≥ τ_S · A0 and ends on the removal that falls below it; the jump is
        fine-tuned before it can be accepted (accepting never-retrained models overfits
        D_V, §8). A rejected jump of n removals is retried capped at n // 2 (the same
        greedy path, shorter); a cap < 2 -> phase 2.
    phase 2: exact GRS (`pruning/grs.py` through the shared loop) from the accepted model,
        the same A0 and τ_S.

Dropout during fine-tuning decays with k = units removed since M0 (a jump of J counts J).
Each jump is one Step (`phase=1`): `tried` lists its removals in order, `scores` its one
fine-tuned metric, `no_retrain_metric` the metric before fine-tuning, `layer`/`unit` its
first removal. Ctrl-C returns the
last accepted model with `partial=True`.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from neurogrs.pruning.data import PruneData, decision_metric
from neurogrs.pruning.grs import propose_grs
from neurogrs.pruning.score import RemovalScorer
from neurogrs.pruning.search import PruneResult, Search, Step, run_search, search_result
from neurogrs.pruning.settings import PruneSettings
from neurogrs.spec import ModelSpec

__all__ = ["jgrs", "first_jump", "greedy_jump"]

Removal = tuple[int, int]


def _above_min(search: Search, masks) -> int:
    m = search.settings.min_units
    return sum(max(0, int(masks[l].sum()) - m) for l in search.layers)


def first_jump(search: Search) -> int:
    """J0: `jgrs_j0`, or max(2, round(fraction × hidden units above the minimum))."""
    s = search.settings
    if s.jgrs_j0:
        return s.jgrs_j0
    return max(2, round(s.jgrs_j0_fraction * _above_min(search, search.masks)))


def _candidates(search: Search, masks) -> list[Removal]:
    """The removals a jump step scores, lowest layer and unit first."""
    s = search.settings
    layers = [l for l in search.layers if int(masks[l].sum()) > s.min_units]
    if s.jgrs_score == "random_unit":
        return [(l, int(search.rng.choice(np.flatnonzero(masks[l])))) for l in layers]
    return [(l, int(u)) for l in layers for u in np.flatnonzero(masks[l])]


def greedy_jump(search: Search, scorer: RemovalScorer, size: int | None,
                floor: float | None = None) -> tuple[list[Removal], dict, float]:
    """Greedy removals from the accepted model, no retraining.

    `size` removals (fewer if the layers reach the minimum), or with `floor`: go on while the
    no-retrain metric stays ≥ floor and stop on the first removal below it (at most `size`
    if given). Returns (removals, masks, no-retrain metric of the result).
    """
    masks = {k: v.copy() for k, v in search.masks.items()}
    removals: list[Removal] = []
    metric = float("nan")
    while size is None or len(removals) < size:
        cands = _candidates(search, masks)
        if not cands:
            break
        scores = scorer.score(search.spec, masks, cands)
        best = int(np.argmax(scores))  # first maximum: lowest layer, then lowest unit
        layer, unit = cands[best]
        masks[layer][unit] = False
        removals.append((layer, unit))
        metric = float(scores[best])
        if floor is not None and metric < floor:
            break
    return removals, masks, metric


def _removed(search: Search) -> int:
    return sum(int((~m).sum()) for m in search.masks.values())


def _phase1(search: Search, data: PruneData, rng: np.random.Generator,
            progress: Callable[[Step], None] | None) -> None:
    """Jumps until J < 2 (doubling) or a rejection (tolerance), or every layer at minimum."""
    from neurogrs.pruning.fit import fit_many

    s = search.settings
    scorer = RemovalScorer.for_spec(search.spec, data, s.metric)
    floor = s.tau_s * search.a0
    jump = first_jump(search)
    retry: int | None = None  # tolerance rule: the cap on the jump after a rejection
    iteration = 0
    while s.max_iterations is None or iteration < s.max_iterations:
        room = _above_min(search, search.masks)
        if room == 0:
            return
        cap = room if not s.jgrs_max_jump else min(room, s.jgrs_max_jump)
        if s.jgrs_rule == "doubling":
            jump = min(jump, cap)
            if jump < 2:
                return
            removals, masks, no_retrain = greedy_jump(search, scorer, jump)
        else:
            if retry is not None:
                cap = min(cap, retry)
            removals, masks, no_retrain = greedy_jump(search, scorer, cap, floor)
        before = search.history[-1][0].metric
        iteration += 1
        k = _removed(search) + len(removals)  # units removed since M0 in the candidate
        seed = int(rng.integers(0, 2**31 - 1))
        trained = fit_many(search.spec, [masks], data.x_train, data.y_train,
                           s.fit_settings(k), seed=seed)[0]
        metric = decision_metric(trained, data, s.metric)
        accepted = metric > floor
        if accepted:
            new_spec, new_masks, kept = trained, masks, metric
        else:
            new_spec, new_masks, kept = search.spec, search.masks, before
        step = search.record(new_spec, new_masks, iteration, kept, accepted,
                             time.perf_counter() - search.t0, removals, [metric], 0,
                             phase=1, no_retrain_metric=no_retrain)
        if progress is not None:
            progress(step)
        if s.jgrs_rule == "tolerance":
            retry = None if accepted else len(removals) // s.jgrs_factor
            if retry is not None and retry < 2:
                return
        elif accepted and before - no_retrain < s.jgrs_delta:
            jump *= s.jgrs_factor
        else:
            jump //= s.jgrs_factor


def _stop(search: Search) -> bool:
    return False


def jgrs(spec: ModelSpec, data: PruneData, settings: PruneSettings, rng: np.random.Generator,
         progress: Callable[[Step], None] | None = None) -> PruneResult:
    """Prune `spec` with JGRS; `rng` draws the fine-tuning seeds (and GRS's units)."""
    search = Search(spec, settings, rng)
    search.a0 = decision_metric(spec, data, settings.metric)
    search.record(spec, search.masks, 0, search.a0, True, 0.0)
    try:
        _phase1(search, data, rng, progress)
    except KeyboardInterrupt:
        return search_result("jgrs", search, partial=True)
    if not settings.jgrs_phase2:
        return search_result("jgrs", search, partial=False)
    search.dropout_offset = _removed(search) - search.history[-1][0].iteration
    return run_search("jgrs", spec, data, settings, rng, propose_grs, _stop, progress,
                      resume=search, phase=2)
