"""What the C generator is told and what it reports: its version, the options it takes,
the status table of the generated API, the layout constants of the generated code, and
the per-layer choice between dense and sparse code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurogrs.settings import SettingsDict
from neurogrs.codegen.names import c_identifier
from neurogrs.errors import ConfigError

__all__ = [
    "GENERATOR_VERSION",
    "GENERATOR_ID",
    "SPARSE_MODES",
    "SPARSE_CROSSOVER",
    "STATUS",
    "PAD",
    "ISA_SUFFIX",
    "SPLIT_SUFFIX",
    "SPLIT_MAX_VECTORS",
    "CodegenSettings",
    "LayerPlan",
    "choose_mode",
]

# Bump when the generated code changes in a way that matters (it keys the C engine cache).
GENERATOR_VERSION = "3"
GENERATOR_ID = f"neurogrs-codegen/{GENERATOR_VERSION}"

SPARSE_MODES = ("auto", "dense", "sparse")
# In "auto" mode a Dense layer with at most this fraction of nonzero weights is "split":
# the 4-wide and plain kernel sets run zero-skipping code for it (it beat them at <= 7%
# nonzero on nn1, N=273), the AVX2 / AVX-512 sets keep their dense kernels (the sparse
# code lost to them at every density down to 3%). Conv2D layers always get dense code
# (sparse conv code never won). Measured with `python -m neurogrs.bench.crossover`;
# runs and tables in docs/codegen.md.
SPARSE_CROSSOVER = 0.07

STATUS = (
    ("OK", "ok"),
    ("ERR_NULL", "null pointer argument"),
    ("ERR_COUNT", "negative frame count"),
    ("ERR_CLOCK", "clock_gettime failed"),
)

# Weighted layers' outputs are zero-padded to a multiple of this many floats (one AVX
# vector, two SSE vectors; an AVX-512 kernel masks the upper half of its last vector when
# needed). Not 16: nn1's first kernel padded 20 -> 32 instead of 24 outgrows L1 and costs
# ~35% (measured, pruned nn1).
PAD = 8
# Placeholders in the call sequence for the kernel set: ISA_SUFFIX becomes "_avx512",
# "_avx2" or "" (portable); SPLIT_SUFFIX the same, but "_sparse" in the portable set.
ISA_SUFFIX = "@ISA@"
SPLIT_SUFFIX = "@SPLIT@"
# Rows go to two accumulator sets when a layer has at most this many output vectors
# (more would not fit the 16 SSE registers together with the weights).
SPLIT_MAX_VECTORS = 4


@dataclass(frozen=True)
class CodegenSettings(SettingsDict):
    """How to generate: the API prefix, and dense/sparse code for sparse layers."""

    prefix: str = "decoder"
    sparse: str = "auto"
    crossover: float = SPARSE_CROSSOVER

    def __post_init__(self) -> None:
        c_identifier(self.prefix, "prefix")
        if self.sparse not in SPARSE_MODES:
            raise ConfigError(f"sparse={self.sparse!r}: choose one of {SPARSE_MODES}")
        if not 0.0 <= float(self.crossover) <= 1.0:
            raise ConfigError(f"crossover={self.crossover!r} must lie in [0, 1]")

    def to_dict(self) -> dict:
        return {"prefix": self.prefix, "sparse": self.sparse, "crossover": float(self.crossover)}


@dataclass(frozen=True)
class LayerPlan:
    """What the generator decided for one layer (reported by `neurogrs codegen`)."""

    index: int
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    mode: str  # "dense" | "sparse" | "split" (x86 SIMD sets dense, others sparse) | "-"
    density: float | None


def choose_mode(kernel: np.ndarray, options: CodegenSettings) -> tuple[str, float]:
    """(mode, density) for a weighted layer's kernel: "dense", "sparse" or "split"."""
    density = float(np.count_nonzero(kernel)) / float(kernel.size)
    if options.sparse == "dense":
        return "dense", density
    if options.sparse == "sparse":
        return "sparse", density
    if kernel.ndim == 4:  # Conv2D: sparse code measured slower at every density
        return "dense", density
    # Dense: the x86 SIMD kernels beat the sparse code at every density measured (3%), the
    # 4-wide kernels lose to it below the crossover: "split" emits both, picked per set
    return ("split" if density <= options.crossover else "dense"), density
