"""The model spec: the one representation of a decoder that crosses every boundary.

Pruning exports it, codegen and every inference engine consume it, and the artifact stores
it (model.json + weights.npz). It is numpy only: no TensorFlow here.

Layouts are Keras' (channels-last): Dense kernel [in, out]; Conv2D kernel
[kh, kw, c_in, c_out]; images [H, W, C]. A frame enters as the raw N-vector in the
session's neuron order; `Preprocessing` turns it into the first layer's input:

    x = (frame - mean) * scale            (each optional, per neuron)
    x = x[index] reshaped to [n, n, 1]    (CNNs only; index -1 -> 0)

Sparse (TQ) models are dense arrays with exact zeros; pruned models are simply narrower.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from neurogrs.errors import ModelError
from neurogrs.layers import (
    ACTIVATIONS,
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    float32_array,
    is_stateful,
)

__all__ = [
    "ACTIVATIONS",
    "Dense",
    "Conv2D",
    "MaxPool2D",
    "Flatten",
    "Dropout",
    "Activation",
    "Layer",
    "Preprocessing",
    "ModelSpec",
    "ModelState",
    "forward",
    "count_params",
    "count_flops",
]


@dataclass(frozen=True, eq=False)
class Preprocessing:
    """What turns a raw N-vector into the first layer's input."""

    n_inputs: int
    mean: np.ndarray | None = None  # [N]
    scale: np.ndarray | None = None  # [N]
    index: np.ndarray | None = None  # [n*n] int32, -1 = empty cell (CNN rearrangement)
    grid: int | None = None  # n

    def __post_init__(self) -> None:
        if int(self.n_inputs) < 1:
            raise ModelError(f"n_inputs must be >= 1, got {self.n_inputs}")
        object.__setattr__(self, "n_inputs", int(self.n_inputs))
        for name in ("mean", "scale"):
            v = getattr(self, name)
            if v is not None:
                v = float32_array(f"preprocessing {name}", v, 1)
                if v.shape[0] != self.n_inputs:
                    raise ModelError(f"preprocessing {name} has {v.shape[0]} entries, expected {self.n_inputs}")
                object.__setattr__(self, name, v)
        if (self.index is None) != (self.grid is None):
            raise ModelError("preprocessing index and grid go together")
        if self.index is not None:
            idx = np.ascontiguousarray(self.index, dtype=np.int32)
            g = int(self.grid)
            if idx.shape != (g * g,):
                raise ModelError(f"rearrangement index must have {g * g} entries, got {idx.shape}")
            if idx.max() >= self.n_inputs or idx.min() < -1:
                raise ModelError("rearrangement index refers to a neuron that does not exist")
            used = idx[idx >= 0]
            if np.unique(used).size != used.size:
                raise ModelError("rearrangement index places a neuron twice")
            object.__setattr__(self, "index", idx)
            object.__setattr__(self, "grid", g)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample entering the first layer."""
        return (self.grid, self.grid, 1) if self.grid is not None else (self.n_inputs,)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """[B, N] float32 -> [B, *input_shape]."""
        x = np.asarray(frames, dtype=np.float32)
        if self.mean is not None:
            x = x - self.mean
        if self.scale is not None:
            x = x * self.scale
        if self.index is not None:
            padded = np.concatenate([x, np.zeros((x.shape[0], 1), np.float32)], axis=1)
            safe = np.where(self.index >= 0, self.index, x.shape[1])
            x = padded[:, safe].reshape(x.shape[0], self.grid, self.grid, 1)
        return np.ascontiguousarray(x, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A decoder: preprocessing, then layers; output is class probabilities."""

    preprocessing: Preprocessing
    layers: tuple[Layer, ...]
    label_names: tuple[str, ...] = ("0", "1")
    name: str = "model"
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "label_names", tuple(str(s) for s in self.label_names))
        if not self.layers:
            raise ModelError("a model needs at least one layer")
        shapes = self.shapes()  # validates the chain
        if shapes[-1] != (len(self.label_names),):
            raise ModelError(
                f"model outputs shape {shapes[-1]} but has {len(self.label_names)} label names"
            )

    # ------------------------------------------------------------ structure
    @property
    def n_inputs(self) -> int:
        return self.preprocessing.n_inputs

    @property
    def n_outputs(self) -> int:
        return len(self.label_names)

    def shapes(self) -> list[tuple[int, ...]]:
        """Input shape, then the output shape of every layer (batch excluded)."""
        shape = self.preprocessing.input_shape
        out = [shape]
        for i, layer in enumerate(self.layers):
            shape = layer.out_shape(shape, f"layer {i} ({type(layer).__name__})")
            out.append(shape)
        return out

    def weighted_layers(self) -> Iterator[tuple[int, Dense | Conv2D]]:
        for i, layer in enumerate(self.layers):
            if isinstance(layer, (Dense, Conv2D)):
                yield i, layer

    def structure(self) -> list[int]:
        """Widths of the weighted layers (units or filters), e.g. [32, 16, 8, 2]."""
        return [l.kernel.shape[-1] for _, l in self.weighted_layers()]

    @property
    def stateful(self) -> bool:
        """True when a layer carries state from frame to frame (temporal context)."""
        return any(is_stateful(l) for l in self.layers)

    def ends_in_softmax(self) -> bool:
        last = [l for l in self.layers if not isinstance(l, Dropout)][-1]
        return getattr(last, "activation", None) == "softmax"

    # ---------------------------------------------------------- serialising
    def architecture(self) -> list[dict]:
        """JSON description of the layers; weights referenced by key in weights.npz."""
        shapes = self.shapes()
        desc = []
        for i, layer in enumerate(self.layers):
            d = layer.to_json(i)
            d["input_shape"] = list(shapes[i])
            d["output_shape"] = list(shapes[i + 1])
            if is_stateful(layer):  # the state's definition travels with the artifact
                d["state_floats"] = 1 + layer.state_values(shapes[i])
            desc.append(d)
        return desc

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the model, by the key it has in weights.npz."""
        out: dict[str, np.ndarray] = {}
        p = self.preprocessing
        if p.mean is not None:
            out["pre.mean"] = p.mean
        if p.scale is not None:
            out["pre.scale"] = p.scale
        if p.index is not None:
            out["pre.index"] = p.index
        for i, layer in enumerate(self.layers):
            out.update(layer.arrays(i))
        return out

    def content_hash(self) -> str:
        """sha256 over architecture and every array (names, dtypes, shapes, bytes).

        Independent of file timestamps: the same model always has the same hash.
        """
        h = hashlib.sha256()
        head = {"n_inputs": self.n_inputs, "grid": self.preprocessing.grid,
                "layers": self.architecture(), "labels": list(self.label_names)}
        h.update(json.dumps(head, sort_keys=True).encode())
        for key, arr in sorted(self.arrays().items()):
            h.update(f"{key}|{arr.dtype.str}|{arr.shape}".encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    # -------------------------------------------------------------- numbers
    def count_params(self) -> int:
        return count_params(self)

    def count_flops(self) -> int:
        return count_flops(self)

    def nonzero_params(self) -> int:
        return int(sum(np.count_nonzero(l.kernel) + np.count_nonzero(l.bias)
                       for _, l in self.weighted_layers()))

    def summary(self) -> dict:
        total = self.count_params()
        nz = self.nonzero_params()
        return {
            "structure": self.structure(),
            "params": total,
            "nonzero_params": nz,
            "flops": self.count_flops(),
            "effective_flops": self.count_flops() - 2 * (total - nz),
        }


class ModelState:
    """The state of a stateful model for one stream: one float32 vector per stateful
    layer, keyed by layer index (layout: neurogrs/layers_temporal.py). Fresh = reset."""

    def __init__(self, spec: ModelSpec) -> None:
        shapes = spec.shapes()
        self.buffers: dict[int, np.ndarray] = {
            i: layer.new_state(shapes[i]) for i, layer in enumerate(spec.layers)
            if is_stateful(layer)}

    def reset(self) -> None:
        for buf in self.buffers.values():
            buf[:] = 0.0

    def copy(self) -> "ModelState":
        new = object.__new__(ModelState)
        new.buffers = {i: b.copy() for i, b in self.buffers.items()}
        return new


def forward(spec: ModelSpec, frames: np.ndarray, state: ModelState | None = None) -> np.ndarray:
    """Reference forward pass: [B, N] raw frames -> [B, C] float32 probabilities.

    For a stateful model the B frames are a sequence in time: they run from `state`
    (updated in place) or, without one, from a fresh state.
    """
    x = spec.preprocessing.apply(frames)
    for i, layer in enumerate(spec.layers):
        if state is not None and i in state.buffers:
            x = layer.apply_sequence(x, state.buffers[i])
        else:
            x = layer.apply(x)
    return np.ascontiguousarray(x, dtype=np.float32)


# ------------------------------------------------------------------ counting (§6)
def count_params(spec: ModelSpec) -> int:
    """Kernels + biases, counted analytically (the paper's TF profiler adds 7)."""
    return int(sum(layer.params for layer in spec.layers))


def count_flops(spec: ModelSpec) -> int:
    """FLOPs at batch 1 as TensorFlow's profiler counts them (algorithms.md §6)."""
    shapes = spec.shapes()
    return int(sum(layer.flops(shapes[i], shapes[i + 1]) for i, layer in enumerate(spec.layers)))
