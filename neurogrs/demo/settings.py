"""What `neurogrs demo` does, as one validated settings object (round-trips via dicts)."""
from __future__ import annotations

from dataclasses import dataclass

from neurogrs.errors import ConfigError
from neurogrs.settings import SettingsDict

__all__ = ["DemoSettings", "DEFAULT_METHOD", "DEFAULT_MODELS", "DEFAULT_SELECT", "DEFAULT_MINIMIZE"]

# The structured pruning method of the demo: JGRS (GRS's faster successor; its phase and
# jump rules are our reconstruction, docs/pruning.md)
DEFAULT_METHOD = "jgrs"
DEFAULT_MODELS = ("nn1", "nn2", "cnn1", "cnn2")
# selection (docs/pruning.md): keep val accuracy within 3 % of each candidate's initial
# model, then take the smallest (FLOPs + parameters)
DEFAULT_SELECT = "acc>=0.97*orig"
DEFAULT_MINIMIZE = "flops+params"


def _int(name: str, v, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")


@dataclass(frozen=True)
class DemoSettings(SettingsDict):
    """Every knob of the demo. The defaults are the `make demo` run: a simulated 273-neuron,
    3,000-frame session, four candidates, paper training (150 epochs); fine-tuning shortened
    to `retrain_epochs` and each search bounded to `max_iterations` (GRS removes one unit
    per iteration: cnn1's ~80 iterations alone take minutes here) so the whole run stays
    under 5 minutes on a shared 2-core machine."""

    out: str = "demo-out"
    neurons: int = 273  # simulated session (ignored with a session file)
    frames: int = 3000
    seed: int = 0
    blocks: int = 1  # blocked split over K chunks (a session whose classes come in long runs: K > 1)
    models: tuple[str, ...] = DEFAULT_MODELS
    method: str = DEFAULT_METHOD
    tq: bool = True
    epochs: int = 150  # initial training (the paper's)
    retrain_epochs: int = 2  # fine-tuning epochs per pruning candidate (paper: 50)
    max_iterations: int | None = 30  # per candidate's search (None: its own stopping rule)
    select: str | None = DEFAULT_SELECT
    minimize: str | None = DEFAULT_MINIMIZE
    engine: str = "c"  # the service's engine
    credit: int = 1  # replay frames in flight (1: lockstep, every frame answered)
    deadline_ms: float = 100.0
    timing_frames: int = 3000  # frames timed per engine (in-process, one call per frame)
    timeout_s: float = 60.0  # bound on every wait for a subprocess

    def __post_init__(self) -> None:
        from neurogrs.inference import ENGINES

        object.__setattr__(self, "models", tuple(self.models))
        _int("neurons", self.neurons, 2, 100_000)
        _int("frames", self.frames, 100, 10_000_000)
        _int("seed", self.seed, 0, 2**63 - 1)
        _int("blocks", self.blocks, 1, 10_000)
        _int("epochs", self.epochs, 1, 100_000)
        _int("retrain_epochs", self.retrain_epochs, 1, 100_000)
        if self.max_iterations is not None:
            _int("max_iterations", self.max_iterations, 1, 10_000_000)
        _int("credit", self.credit, 1, 1 << 16)
        _int("timing_frames", self.timing_frames, 10, 10_000_000)
        if not self.models or not all(isinstance(m, str) and m for m in self.models):
            raise ConfigError(f"models must be a non-empty list of model names, got {self.models!r}")
        if self.method not in _methods():
            raise ConfigError(f"method must be one of {_methods()}, got {self.method!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        for name, lo, hi in (("deadline_ms", 0.1, 60_000.0), ("timeout_s", 1.0, 3600.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ConfigError(f"{name} must be a number in [{lo}, {hi}], got {v!r}")
        if self.select is not None or self.minimize is not None:
            from neurogrs.pruning.pipeline import check_selection

            check_selection(self.select, self.minimize, None)


def _methods() -> tuple[str, ...]:
    from neurogrs.pruning.pipeline import METHODS

    return tuple(METHODS)
