"""GRS, Greedy inter-layer order with Random Selection (paper Algorithm 1, algorithms.md §3).

Every iteration, each prunable layer above the minimum width offers ONE candidate: the
accepted model with one uniformly random unit of that layer removed. All candidates are
fine-tuned; the best on D_V wins (ties: the lowest layer, our [reconstruction]) and is
accepted if its metric exceeds τ_S · A0 (A0 = the initial model's). The first failing
iteration ends GRS and the last accepted model is returned.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurogrs.pruning.data import PruneData
from neurogrs.pruning.search import PruneResult, Search, Step, run_search
from neurogrs.pruning.settings import PruneSettings
from neurogrs.spec import ModelSpec

__all__ = ["grs", "propose_grs"]


def propose_grs(search: Search) -> list[tuple[int, int]]:
    """One random active unit of every layer above the minimum, lowest layer first."""
    return [(layer, int(search.rng.choice(search.active(layer)))) for layer in search.removable()]


def _stop(search: Search) -> bool:
    return False


def grs(spec: ModelSpec, data: PruneData, settings: PruneSettings, rng: np.random.Generator,
        progress: Callable[[Step], None] | None = None) -> PruneResult:
    """Prune `spec` with GRS; `rng` draws the units and the fine-tuning seeds."""
    return run_search("grs", spec, data, settings, rng, propose_grs, _stop, progress)
