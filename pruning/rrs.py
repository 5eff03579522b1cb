"""RRS, Random inter-layer order with Random Selection (the paper's baseline for GRS).

GRS's loop with one candidate per iteration: a layer drawn uniformly among those above the
minimum width, and a uniformly random unit of it. Only that candidate is fine-tuned; it is
accepted if its D_V metric exceeds τ_S · A0, and the first failure ends RRS.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurogrs.pruning.data import PruneData
from neurogrs.pruning.search import PruneResult, Search, Step, run_search
from neurogrs.pruning.settings import PruneSettings
from neurogrs.spec import ModelSpec

__all__ = ["rrs", "propose_rrs"]


def propose_rrs(search: Search) -> list[tuple[int, int]]:
    layers = search.removable()
    if not layers:
        return []
    layer = int(search.rng.choice(layers))
    return [(layer, int(search.rng.choice(search.active(layer))))]


def _stop(search: Search) -> bool:
    return False


def rrs(spec: ModelSpec, data: PruneData, settings: PruneSettings, rng: np.random.Generator,
        progress: Callable[[Step], None] | None = None) -> PruneResult:
    """Prune `spec` with RRS; `rng` draws layers, units and fine-tuning seeds."""
    return run_search("rrs", spec, data, settings, rng, propose_rrs, _stop, progress)
