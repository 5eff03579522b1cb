"""Unit surgery on a ModelSpec: removing units (Dense) and filters (Conv2D), numpy only.

A hidden unit k of a weighted layer lives in three places: its kernel column
(`kernel[..., k]`), its bias `bias[k]`, and the input rows of the next weighted layer that
read it. Those rows are:

    Dense  -> Dense                         row k
    Conv2D -> (MaxPool/Dropout) -> Conv2D   input channel k: next.kernel[:, :, k, :]
    Conv2D -> ... -> Flatten -> Dense       rows p*C + k for every spatial position p
                                            (channels-last flattening, stride C)

Masks say which units stay: `{layer index: bool[width]}`, True = active. Two ways to apply
them compute the same function:

- `slice_masked`: physically remove the masked units (what pruning exports);
- `zero_masked`: keep the full width, set the masked units' kernel columns, biases and the
  next layer's rows for them to zero (what the masked trainer returns).

Only the weighted layers before the last one are prunable: the output layer's width is the
number of classes.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from neurogrs.errors import ModelError
from neurogrs.spec import Conv2D, Dense, Flatten, ModelSpec

__all__ = [
    "Masks",
    "prunable_layers",
    "full_masks",
    "check_masks",
    "remove_units",
    "zero_masked",
    "slice_masked",
]

Masks = dict[int, np.ndarray]


def prunable_layers(spec: ModelSpec) -> list[int]:
    """Indices (into spec.layers) of every Dense/Conv2D except the last weighted layer."""
    weighted = [i for i, _ in spec.weighted_layers()]
    return weighted[:-1]


def _width(spec: ModelSpec, i: int) -> int:
    return int(spec.layers[i].kernel.shape[-1])


def full_masks(spec: ModelSpec) -> Masks:
    """Every prunable unit active."""
    return {i: np.ones(_width(spec, i), dtype=bool) for i in prunable_layers(spec)}


def check_masks(spec: ModelSpec, masks: Masks) -> Masks:
    """Validate masks against spec; returns them as bool arrays (every problem at once)."""
    prunable = prunable_layers(spec)
    problems: list[str] = []
    out: Masks = {}
    for key, value in masks.items():
        if not isinstance(key, (int, np.integer)) or int(key) not in prunable:
            problems.append(f"mask key {key!r} is not a prunable layer (prunable: {prunable})")
            continue
        m = np.asarray(value)
        width = _width(spec, int(key))
        if m.dtype != bool or m.shape != (width,):
            problems.append(f"mask of layer {key} must be bool[{width}], got {m.dtype}{list(m.shape)}")
            continue
        if not m.any():
            problems.append(f"mask of layer {key} removes every unit (at least 1 must stay)")
            continue
        out[int(key)] = m
    if problems:
        raise ModelError("bad masks:\n  - " + "\n  - ".join(problems))
    return out


def _next_weighted(spec: ModelSpec, i: int) -> tuple[int, bool]:
    """(index of the next weighted layer after i, whether a Flatten lies between)."""
    flat = False
    for j in range(i + 1, len(spec.layers)):
        layer = spec.layers[j]
        if isinstance(layer, (Dense, Conv2D)):
            return j, flat
        if isinstance(layer, Flatten):
            flat = True
    raise ModelError(f"layer {i} has no weighted layer after it: it is the output layer")


def _input_rows(spec: ModelSpec, j: int, flat: bool, channels: int, keep: np.ndarray) -> np.ndarray:
    """Which input rows (Dense) / channels (Conv2D) of layer j read the units `keep` (bool[C])."""
    if not flat:
        return keep
    # Conv -> Flatten -> Dense: the flat input is [positions, C] in C order
    n_in = spec.layers[j].kernel.shape[0]
    if n_in % channels:
        raise ModelError(f"layer {j} reads {n_in} inputs, not a multiple of {channels} channels")
    return np.tile(keep, n_in // channels)


def _keep_sets(spec: ModelSpec, masks: Masks) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per weighted layer: bool over its outputs to keep, bool over its inputs to keep."""
    out_keep: dict[int, np.ndarray] = {}
    in_keep: dict[int, np.ndarray] = {}
    for i, layer in spec.weighted_layers():
        out_keep[i] = masks.get(i, np.ones(layer.kernel.shape[-1], dtype=bool))
        in_dim = 2 if isinstance(layer, Conv2D) else 0
        in_keep.setdefault(i, np.ones(layer.kernel.shape[in_dim], dtype=bool))
    for i in masks:
        j, flat = _next_weighted(spec, i)
        in_keep[j] = _input_rows(spec, j, flat, _width(spec, i), out_keep[i])
    return out_keep, in_keep


def _with_layers(spec: ModelSpec, layers: list) -> ModelSpec:
    # metrics describe the old model; name, preprocessing, labels and provenance carry over
    return dataclasses.replace(spec, layers=tuple(layers), metrics={})


def _rebuild(layer: Dense | Conv2D, kernel: np.ndarray, bias: np.ndarray) -> Dense | Conv2D:
    return dataclasses.replace(layer, kernel=kernel, bias=bias)


def slice_masked(spec: ModelSpec, masks: Masks) -> ModelSpec:
    """Physically remove every masked unit (inherited weights): the exported model."""
    masks = check_masks(spec, masks)
    out_keep, in_keep = _keep_sets(spec, masks)
    layers = list(spec.layers)
    for i, layer in spec.weighted_layers():
        o, n = out_keep[i], in_keep[i]
        if isinstance(layer, Conv2D):
            kernel = layer.kernel[:, :, n][..., o]
        else:
            kernel = layer.kernel[n][:, o]
        layers[i] = _rebuild(layer, kernel, layer.bias[o])
    return _with_layers(spec, layers)


def zero_masked(spec: ModelSpec, masks: Masks) -> ModelSpec:
    """Full width; masked units' kernel columns, biases and next-layer rows set to 0.

    Computes the same function as `slice_masked(spec, masks)`.
    """
    masks = check_masks(spec, masks)
    out_keep, in_keep = _keep_sets(spec, masks)
    layers = list(spec.layers)
    for i, layer in spec.weighted_layers():
        o, n = out_keep[i], in_keep[i]
        kernel = layer.kernel.copy()
        bias = layer.bias.copy()
        kernel[..., ~o] = 0.0
        bias[~o] = 0.0
        if isinstance(layer, Conv2D):
            kernel[:, :, ~n] = 0.0
        else:
            kernel[~n] = 0.0
        layers[i] = _rebuild(layer, kernel, bias)
    return _with_layers(spec, layers)


def remove_units(spec: ModelSpec, layer: int, units: Sequence[int]) -> ModelSpec:
    """`spec` with the given units of one prunable layer physically removed."""
    prunable = prunable_layers(spec)
    if layer not in prunable:
        raise ModelError(f"layer {layer} is not prunable (prunable: {prunable})")
    width = _width(spec, layer)
    idx = np.asarray(list(units), dtype=np.int64)
    if idx.size == 0:
        raise ModelError("remove_units needs at least one unit")
    if idx.min() < 0 or idx.max() >= width:
        raise ModelError(f"units {idx.tolist()} out of range for layer {layer} (0..{width - 1})")
    if np.unique(idx).size != idx.size:
        raise ModelError(f"units {idx.tolist()} name a unit twice")
    mask = np.ones(width, dtype=bool)
    mask[idx] = False
    if not mask.any():
        raise ModelError(f"removing {idx.size} units would empty layer {layer} (width {width})")
    return slice_masked(spec, {layer: mask})
