"""CNN input rearrangement (algorithms.md §7, the paper's Algorithm 3).

Neurons are sorted by x + y (stable) and laid into an n x n grid (n = ceil(sqrt(N))) that
grows from j x j to (j+1) x (j+1): for each j, first the new row and column alternately,
then the new corner. The result is an index map: cell i of the flattened grid holds neuron
`index[i]`, or nothing (-1, the cell stays 0). The map depends only on positions, so it is
computed once and applied to every frame with one gather: `neurogrs.spec.Preprocessing.apply`
(the one implementation; the engines and the C generator follow it).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["grid_side", "fill_order", "rearrangement_index"]


def grid_side(n_neurons: int) -> int:
    """n = ceil(sqrt(N)) computed exactly in integers."""
    if n_neurons <= 0:
        raise ValueError(f"n_neurons must be > 0, got {n_neurons}")
    n = math.isqrt(n_neurons)
    return n if n * n == n_neurons else n + 1


def fill_order(n: int) -> list[tuple[int, int]]:
    """The sequence of (row, col) cells Algorithm 3 fills, for an n x n grid."""
    cells: list[tuple[int, int]] = []
    for j in range(n):
        for t in range(j):
            cells.append((j, t))
            cells.append((t, j))
        cells.append((j, j))
    return cells


def rearrangement_index(
    n_neurons: int, positions: np.ndarray | None
) -> np.ndarray:
    """int32 [n*n] index map; -1 marks an empty cell.

    Without positions, neurons are placed in index order (with a warning): the grid then
    carries no spatial meaning, which a CNN can still fit but the paper's premise is lost.
    """
    n = grid_side(n_neurons)
    if positions is None:
        warnings.warn(
            "session has no neuron positions: CNN input uses neuron index order "
            "instead of the x+y spatial order (see docs/concepts.md)",
            stacklevel=2,
        )
        order = np.arange(n_neurons)
    else:
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (n_neurons, 2):
            raise ValueError(f"positions must be [{n_neurons}, 2], got {pos.shape}")
        order = np.argsort(pos[:, 0] + pos[:, 1], kind="stable")
    index = np.full(n * n, -1, dtype=np.int32)
    for rank, (r, c) in enumerate(fill_order(n)[:n_neurons]):
        index[r * n + c] = order[rank]
    return index
