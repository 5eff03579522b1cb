"""Pruning settings: the paper's defaults, validated on creation, loadable from TOML.

`PruneSettings()` holds the NeuroGRS defaults (algorithms.md §3-§4): τ_S 0.985, τ_T 0.995,
τ_Q 0.990, fine-tuning 50 epochs, batch 32, Adam 1e-3, dropout × 0.95 per iteration,
minimum 2 units per prunable layer, θ 0.001 step 0.001 (Stage T reading "layerwise"),
4 decimals. The decision metric
defaults to balanced accuracy on D_V (see docs/pruning.md for why).

A TOML file holds any subset of the fields at top level:

    tau_s = 0.98
    retrain_epochs = 20
    metric = "accuracy"

`PruneSettings.from_file(path, **overrides)`: the file first, then the overrides
(command-line flags) win.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from neurogrs.errors import ConfigError
from neurogrs.settings import read_toml

__all__ = ["PruneSettings", "METRICS", "SPLITS", "JUMP_RULES", "JUMP_SCORES",
           "STAGE_T_READINGS"]

METRICS = ("balanced_accuracy", "accuracy")
SPLITS = ("blocked", "shuffled")
JUMP_RULES = ("doubling", "tolerance")  # JGRS phase 1: J×2 / J÷2, or jump while ≥ τ_S·A0
JUMP_SCORES = ("every_unit", "random_unit")  # JGRS: which removals a jump step scores
# Stage T's "stop" (pruning/tq.py): the first failing layer ends it (the authors' code,
# the default), one all-layer cut per sweep (the paper's prose), or per-layer thresholds
STAGE_T_READINGS = ("layerwise", "global", "per_layer")


def _number(name: str, value: Any, lo: float, hi: float, *, integer: bool = False,
            lo_open: bool = False) -> None:
    kind = "an integer" if integer else "a number"
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    ok = ok and math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        left = "(" if lo_open else "["
        raise ConfigError(f"{name} must be {kind} in {left}{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class PruneSettings:
    """Every knob of `neurogrs prune` (recorded in report.json and each artifact)."""

    tau_s: float = 0.985  # GRS / RRS / NWM tolerance, relative to A0
    tau_t: float = 0.995  # Stage T tolerance, relative to the pruned model
    tau_q: float = 0.990  # Stage Q tolerance, relative to Stage T's model
    retrain_epochs: int = 50  # fine-tuning epochs per candidate (the authors' code: 100)
    batch_size: int = 32
    learning_rate: float = 1e-3  # Adam, fresh for every candidate
    dropout_decay: float = 0.95  # dropout rate × decay**k at pruning iteration k
    min_units: int = 2  # per prunable layer
    theta: float = 0.001  # Stage T first threshold
    theta_step: float = 0.001
    stage_t: str = "layerwise"  # Stage T reading, one of STAGE_T_READINGS
    decimals: int = 4  # Stage Q first rounding
    metric: str = "balanced_accuracy"  # decision metric on D_V
    seed: int = 0
    initial_epochs: int = 150  # training of the initial models
    split: str = "blocked"
    blocks: int = 1
    # stop a structured search after this many iterations (None: until its own stopping
    # rule); the accepted model so far is the result (e.g. the demo's bounded run time)
    max_iterations: int | None = None
    # JGRS (algorithms.md §8, our reconstruction; docs/pruning.md "JGRS")
    jgrs_rule: str = "doubling"  # "tolerance": the variant (jump while no-retrain ≥ τ_S·A0)
    jgrs_score: str = "every_unit"  # or one random unit per layer (§8's first text)
    jgrs_j0: int = 0  # first jump size; 0 = max(2, round(j0_fraction × units above minimum))
    jgrs_j0_fraction: float = 0.1
    jgrs_delta: float = 0.01  # no-retrain drop (absolute) below which J grows after accepting
    jgrs_factor: int = 2  # J × factor after a cheap accepted jump, J // factor otherwise
    jgrs_max_jump: int = 0  # cap on one jump's removals; 0 = the removable units
    jgrs_phase2: bool = True  # exact GRS after phase 1 (False: stop after phase 1)

    def __post_init__(self) -> None:
        for name in ("tau_s", "tau_t", "tau_q"):
            _number(name, getattr(self, name), 0.0, 1.0, lo_open=True)
        _number("retrain_epochs", self.retrain_epochs, 1, 100_000, integer=True)
        _number("initial_epochs", self.initial_epochs, 1, 100_000, integer=True)
        _number("batch_size", self.batch_size, 1, 65_536, integer=True)
        _number("learning_rate", self.learning_rate, 0.0, 1.0, lo_open=True)
        _number("dropout_decay", self.dropout_decay, 0.0, 1.0, lo_open=True)
        _number("min_units", self.min_units, 1, 1_000_000, integer=True)
        _number("theta", self.theta, 0.0, 1e3, lo_open=True)
        _number("theta_step", self.theta_step, 0.0, 1e3, lo_open=True)
        _number("decimals", self.decimals, 0, 8, integer=True)
        _number("seed", self.seed, 0, 2**63 - 1, integer=True)
        _number("blocks", self.blocks, 1, 10_000, integer=True)
        if self.max_iterations is not None:
            _number("max_iterations", self.max_iterations, 1, 10_000_000, integer=True)
        if self.metric not in METRICS:
            raise ConfigError(f"metric must be one of {METRICS}, got {self.metric!r}")
        _number("jgrs_j0", self.jgrs_j0, 0, 1_000_000, integer=True)
        _number("jgrs_j0_fraction", self.jgrs_j0_fraction, 0.0, 1.0, lo_open=True)
        _number("jgrs_delta", self.jgrs_delta, 0.0, 1.0)
        _number("jgrs_factor", self.jgrs_factor, 2, 1_000, integer=True)
        _number("jgrs_max_jump", self.jgrs_max_jump, 0, 1_000_000, integer=True)
        if not isinstance(self.jgrs_phase2, bool):
            raise ConfigError(f"jgrs_phase2 must be true or false, got {self.jgrs_phase2!r}")
        if self.jgrs_rule not in JUMP_RULES:
            raise ConfigError(f"jgrs_rule must be one of {JUMP_RULES}, got {self.jgrs_rule!r}")
        if self.jgrs_score not in JUMP_SCORES:
            raise ConfigError(f"jgrs_score must be one of {JUMP_SCORES}, "
                              f"got {self.jgrs_score!r}")
        if self.stage_t not in STAGE_T_READINGS:
            raise ConfigError(f"stage_t must be one of {STAGE_T_READINGS}, "
                              f"got {self.stage_t!r}")
        if self.split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {self.split!r}")

    # ------------------------------------------------------------- round trip
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PruneSettings":
        if not isinstance(d, dict):
            raise ConfigError(f"prune settings must be a table/dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown prune setting(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path | None, **overrides: Any) -> "PruneSettings":
        """Settings from a TOML file (optional), then `overrides` that are not None."""
        base = read_toml(path, f"--config {Path(path)}") if path is not None else {}
        settings = cls.from_dict(base)
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given) if given else settings

    # -------------------------------------------------------------- derived
    def dropout_scale(self, iteration: int) -> float:
        """Multiplier of every Dropout rate when fine-tuning at pruning iteration k (from 0)."""
        return float(self.dropout_decay ** int(iteration))

    def fit_settings(self, iteration: int):
        """The `FitSettings` for fine-tuning candidates at pruning iteration k (JGRS: k =
        units removed since the initial model)."""
        from neurogrs.pruning.fit import FitSettings

        return FitSettings(epochs=self.retrain_epochs, batch_size=self.batch_size,
                           learning_rate=self.learning_rate,
                           dropout_scale=self.dropout_scale(iteration))
