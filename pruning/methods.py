"""The structured pruning methods by name: one line per method.

Every method is a function `(spec, data, settings, rng, progress=None) -> PruneResult`
(`pruning.search`). `neurogrs prune --method` and `neurogrs bench pruning --suite
--methods` both read this table, so a new method (e.g. JGRS) is one line here:

    "jgrs": "neurogrs.pruning.jgrs:jgrs",

Modules are imported on first use (the TensorFlow-backed trainer is not loaded until a
method runs).
"""
from __future__ import annotations

import importlib
from typing import Callable

from neurogrs.errors import ConfigError

__all__ = ["REGISTRY", "method_names", "method_function"]

REGISTRY: dict[str, str] = {
    "grs": "neurogrs.pruning.grs:grs",
    "rrs": "neurogrs.pruning.rrs:rrs",
    "nwm": "neurogrs.pruning.nwm:nwm",
    "jgrs": "neurogrs.pruning.jgrs:jgrs",
}


def method_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def method_function(name: str) -> Callable:
    """The pruning function registered as `name`; ConfigError naming the valid ones."""
    if name not in REGISTRY:
        raise ConfigError(f"method must be one of {method_names()}, got {name!r}")
    module, _, attr = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attr)
