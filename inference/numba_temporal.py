"""Numba source for the stateful layers (temporal context; numpy reference and state
layout in neurogrs/layers_temporal.py).

Each stateful layer becomes `layer<i>(x, y, st)`, `st` being that layer's float32 state
vector (element 0 the primed flag, then the values), updated in place. The arithmetic is
the reference's, in float32 and in the same order (no fastmath: no FMA contraction), so
the traces match numpy bit for bit and the filter to rounding of its K-term sums.
"""
from __future__ import annotations

import numpy as np

from neurogrs.layers_temporal import ForwardFilter, LeakyTraces

__all__ = ["STATE_SIG", "traces_function", "filter_function"]

STATE_SIG = "void(float32[::1], float32[::1], float32[::1])"


def traces_function(i: int, layer: LeakyTraces, n_in: int, deco: str,
                    arrays: dict[str, np.ndarray], consts: list[str]) -> str:
    """LeakyTraces over a flat input of n_in elements (an image is flat channels-last)."""
    m = layer.m
    arrays[f"DECAY{i}"] = layer.decays
    arrays[f"GAIN{i}"] = (np.float32(1) - layer.decays).astype(np.float32)
    consts += [f'DECAY{i} = W["DECAY{i}"]  # a_j', f'GAIN{i} = W["GAIN{i}"]  # 1 - a_j, float32']
    body = [
        f"# layer {i}: LeakyTraces, {n_in} elements x {m} traces; state {1 + n_in * m} floats",
        deco, f"def layer{i}(x, y, st):",
        "    if st[0] == 0.0:  # first frame after a reset: the traces start at the frame",
        f"        for e in range({n_in}):",
        f"            for j in range({m}):",
        f"                st[1 + e * {m} + j] = x[e]",
        "        st[0] = 1.0",
        "    else:",
        f"        for e in range({n_in}):",
        "            xe = x[e]",
        f"            for j in range({m}):",
        f"                k = 1 + e * {m} + j",
        f"                st[k] = DECAY{i}[j] * st[k] + GAIN{i}[j] * xe",
        f"    for e in range({n_in}):",
        f"        y[e * {1 + m}] = x[e]",
        f"        for j in range({m}):",
        f"            y[e * {1 + m} + 1 + j] = st[1 + e * {m} + j]",
        "",
    ]
    return "\n".join(body)


def filter_function(i: int, layer: ForwardFilter, deco: str,
                    arrays: dict[str, np.ndarray], consts: list[str]) -> str:
    """ForwardFilter on K class probabilities: b <- normalise(p * (b T) / prior)."""
    k = int(layer.prior.shape[0])
    arrays[f"T{i}"], arrays[f"PRIOR{i}"] = layer.transition, layer.prior
    consts += [f'T{i} = W["T{i}"]  # [K, K], row = P(next | class)', f'PRIOR{i} = W["PRIOR{i}"]']
    body = [
        f"# layer {i}: ForwardFilter over {k} classes; state {1 + k} floats",
        deco, f"def layer{i}(x, y, st):",
        "    if st[0] != 0.0:",
        "        total = np.float32(0.0)",
        f"        for c in range({k}):",
        "            q = np.float32(0.0)",
        f"            for d in range({k}):",
        f"                q += st[1 + d] * T{i}[d, c]",
        f"            y[c] = x[c] * q / PRIOR{i}[c]",
        "            total += y[c]",
        "        if total > np.float32(1e-30):",
        f"            for c in range({k}):",
        "                st[1 + c] = y[c] / total",
        "                y[c] = st[1 + c]",
        "            return",
        f"    for c in range({k}):  # first frame (or a vanishing sum): b = p",
        "        st[1 + c] = x[c]",
        "        y[c] = x[c]",
        "    st[0] = 1.0",
        "",
    ]
    return "\n".join(body)
