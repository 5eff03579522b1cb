"""NWM, Natural inter-layer order and Weight Magnitude (Li et al., extended to Dense units).

Layers are visited input side first. In the current layer the unit whose incoming weights
have the smallest L1 norm (bias excluded; a Conv2D filter's whole kernel slice) is removed,
the model fine-tuned, and kept while its D_V metric exceeds τ_S · A0. A failure reverts
that removal and moves on to the next layer; a layer at the minimum width is left too.
NWM ends after the last prunable layer (a failure never ends it early).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurogrs.pruning.data import PruneData
from neurogrs.pruning.search import PruneResult, Search, Step, run_search
from neurogrs.pruning.settings import PruneSettings
from neurogrs.spec import ModelSpec

__all__ = ["nwm", "propose_nwm", "incoming_l1"]


def incoming_l1(search: Search, layer: int) -> np.ndarray:
    """L1 norm of each unit's incoming weights in the accepted model (bias excluded)."""
    kernel = search.spec.layers[layer].kernel
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def propose_nwm(search: Search) -> list[tuple[int, int]]:
    """The smallest-L1 active unit of the current layer; skip layers at the minimum."""
    while search.cursor < len(search.layers):
        layer = search.layers[search.cursor]
        if layer in search.removable():
            active = search.active(layer)
            norms = incoming_l1(search, layer)[active]
            return [(layer, int(active[int(np.argmin(norms))]))]
        search.cursor += 1
    return []


def _next_layer(search: Search) -> bool:
    search.cursor += 1
    return True


def nwm(spec: ModelSpec, data: PruneData, settings: PruneSettings, rng: np.random.Generator,
        progress: Callable[[Step], None] | None = None) -> PruneResult:
    """Prune `spec` with NWM; `rng` only seeds fine-tuning (the order is deterministic)."""
    return run_search("nwm", spec, data, settings, rng, propose_nwm, _next_layer, progress)
