"""Register-blocking rules shared by the two kernel generators: the C generator
(`neurogrs.codegen`) and the numba engine's module generator (`neurogrs.inference`).

Both split a run of outputs (Dense outputs, Conv2D channels, output vectors) into
near-equal blocks that fit the registers, and both fuse a Conv2D with the MaxPool2D that
follows it under the same rule. Plain Python, no numpy: the inference package imports it
from here (inference already depends on codegen; codegen never imports inference), so
there is no cycle.
"""
from __future__ import annotations

import math

__all__ = ["FUSE_POOL_MAX", "near_equal_blocks", "can_fuse_pool"]

# A Conv2D followed by a MaxPool2D whose window has at most this many pixels is one fused
# kernel: the window's conv pixels are one register block (the x86-64 SIMD sets of the
# generated C, and the numba engine).
FUSE_POOL_MAX = 9


def near_equal_blocks(n: int, max_size: int) -> list[tuple[int, int]]:
    """0..n-1 in near-equal blocks of at most max_size (at least 1): [(first, count)].

    As few blocks as fit, all of the same size but the last: 70 by 32 -> 24, 24, 22."""
    n_blocks = -(-n // max(1, max_size))
    size = -(-n // n_blocks)
    return [(first, min(size, n - first)) for first in range(0, n, size)]


def can_fuse_pool(activation: str, pool_size: tuple[int, ...]) -> bool:
    """True when a Conv2D with this activation and the MaxPool2D of this window that
    follows it run as one kernel: max over the window commutes only with a monotone
    activation applied after it (ReLU or none), and the window must fit one block."""
    return activation in ("relu", "linear") and int(math.prod(pool_size)) <= FUSE_POOL_MAX
