"""The simulator's settings (`neurogrs.simulate`): validated on creation, the errors naming
the field, the value and the valid range; a dict round trip for config files and provenance.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from neurogrs.errors import ConfigError

__all__ = ["SimulationSettings", "check_range", "DIFFICULTIES"]

# Named simulator settings for benchmarks, as overrides of the defaults. "standard" lets
# nn1 shrink to the minimum width with little loss; "hard" lowers decodability (fewer
# tuned neurons, weaker tuning), so pruning methods separate. Measured with a ridge linear
# read-out on the suite's three mice (273/140/114 neurons, 3,000 frames, first 70 % -> last
# 30 %): balanced accuracy 0.904/0.852/0.930 standard, 0.813/0.693/0.665 hard
# (tests/test_simulate.py holds the margin).
DIFFICULTIES: dict[str, dict[str, Any]] = {
    "standard": {},
    "hard": {"tuned_fraction": 0.15, "tuning_gain": 1.2},
}


def check_range(name: str, value: Any, lo: float, hi: float, integer: bool = False,
                 lo_open: bool = False) -> None:
    ok_type = (isinstance(value, (int, np.integer)) and not isinstance(value, bool)) if integer \
        else (isinstance(value, (int, float, np.integer, np.floating))
              and not isinstance(value, bool))
    if not ok_type:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} = {value!r}: must be {kind} in "
                          f"{'(' if lo_open else '['}{lo:g}, {hi:g}]")
    v = float(value)
    if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
        raise ConfigError(f"{name} = {value!r}: must be in "
                          f"{'(' if lo_open else '['}{lo:g}, {hi:g}]")


@dataclass(frozen=True)
class SimulationSettings:
    """Settings of `simulate_session`; validated on creation (errors name field, value, range)."""

    n_neurons: int = 273
    n_frames: int = 3000
    fs: float = 10.0
    label1_fraction: float = 0.30
    label1_tolerance: float = 0.04
    # field of view
    fov_px: float = 512.0
    n_clusters: int = 8
    clustered_fraction: float = 0.6
    cluster_sd_px: float = 18.0
    min_distance_px: float = 8.0
    # behaviour (mean dwell times, seconds; fine-motion dwell follows label1_fraction)
    rest_dwell_s: float = 10.0
    coarse_dwell_s: float = 6.0
    # neurons
    tuned_fraction: float = 0.35
    tuning_gain: float = 2.4
    base_rate_hz: float = 0.25
    shared_fluctuation: float = 0.25
    private_fluctuation: float = 0.25
    decay_s: tuple[float, float] = (0.5, 1.0)
    noise_sd: float = 0.25
    zero_fraction: float = 0.5
    # day-to-day drift between sessions of one mouse (log-sd of rate and gain changes)
    drift: float = 0.25

    def __post_init__(self) -> None:
        check_range("n_neurons", self.n_neurons, 1, 100_000, integer=True)
        check_range("n_frames", self.n_frames, 50, 10_000_000, integer=True)
        check_range("fs", self.fs, 0.0, 1000.0, lo_open=True)
        check_range("label1_fraction", self.label1_fraction, 0.05, 0.8)
        check_range("label1_tolerance", self.label1_tolerance, 0.005, 0.5)
        check_range("fov_px", self.fov_px, 16.0, 100_000.0)
        check_range("n_clusters", self.n_clusters, 1, 1000, integer=True)
        check_range("clustered_fraction", self.clustered_fraction, 0.0, 1.0)
        check_range("cluster_sd_px", self.cluster_sd_px, 0.0, 10_000.0, lo_open=True)
        check_range("min_distance_px", self.min_distance_px, 0.0, self.fov_px / 8)
        check_range("rest_dwell_s", self.rest_dwell_s, 0.5, 3600.0)
        check_range("coarse_dwell_s", self.coarse_dwell_s, 0.5, 3600.0)
        check_range("tuned_fraction", self.tuned_fraction, 0.0, 1.0)
        check_range("tuning_gain", self.tuning_gain, 0.0, 10.0)
        check_range("base_rate_hz", self.base_rate_hz, 0.0, 100.0, lo_open=True)
        check_range("shared_fluctuation", self.shared_fluctuation, 0.0, 5.0)
        check_range("private_fluctuation", self.private_fluctuation, 0.0, 5.0)
        if not (isinstance(self.decay_s, (tuple, list)) and len(self.decay_s) == 2):
            raise ConfigError(f"decay_s = {self.decay_s!r}: must be a (min, max) pair of seconds")
        check_range("decay_s[0]", self.decay_s[0], 0.0, 60.0, lo_open=True)
        check_range("decay_s[1]", self.decay_s[1], float(self.decay_s[0]), 60.0)
        object.__setattr__(self, "decay_s", (float(self.decay_s[0]), float(self.decay_s[1])))
        check_range("noise_sd", self.noise_sd, 0.0, 100.0)
        check_range("zero_fraction", self.zero_fraction, 0.0, 0.95)
        check_range("drift", self.drift, 0.0, 3.0)
        # the expected occupancy must be reachable inside the recording
        if self.n_frames / self.fs < 10.0:
            raise ConfigError(
                f"n_frames = {self.n_frames} at fs = {self.fs:g} Hz is {self.n_frames / self.fs:g} s: "
                "need at least 10 s of behaviour"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["decay_s"] = list(self.decay_s)
        return d

    @classmethod
    def for_difficulty(cls, name: str, **overrides: Any) -> "SimulationSettings":
        """The settings of a named difficulty (`DIFFICULTIES`), then `overrides`."""
        if name not in DIFFICULTIES:
            raise ConfigError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {name!r}")
        return cls(**{**DIFFICULTIES[name], **overrides})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SimulationSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown simulation setting(s): {', '.join(unknown)}")
        d = dict(d)
        if "decay_s" in d:
            d["decay_s"] = tuple(d["decay_s"])
        return cls(**d)
