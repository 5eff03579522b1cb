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
from typing import Any, Iterator, Union

import numpy as np

from neurogrs.errors import ModelError

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
    "forward",
    "count_params",
    "count_flops",
]

ACTIVATIONS = ("linear", "relu", "softmax")


def _check_activation(act: str) -> str:
    if act not in ACTIVATIONS:
        raise ModelError(f"activation {act!r} is not supported (use one of {ACTIVATIONS})")
    return act


def _f32(name: str, arr: Any, ndim: int) -> np.ndarray:
    a = np.ascontiguousarray(arr, dtype=np.float32)
    if a.ndim != ndim:
        raise ModelError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ModelError(f"{name} contains NaN/Inf")
    return a


@dataclass(frozen=True, eq=False)
class Dense:
    kernel: np.ndarray  # [in, out]
    bias: np.ndarray  # [out]
    activation: str = "linear"

    def __post_init__(self) -> None:
        k = _f32("Dense kernel", self.kernel, 2)
        b = _f32("Dense bias", self.bias, 1)
        if b.shape[0] != k.shape[1]:
            raise ModelError(f"Dense bias has {b.shape[0]} entries, kernel has {k.shape[1]} outputs")
        object.__setattr__(self, "kernel", k)
        object.__setattr__(self, "bias", b)
        _check_activation(self.activation)

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1])


@dataclass(frozen=True, eq=False)
class Conv2D:
    kernel: np.ndarray  # [kh, kw, c_in, c_out]
    bias: np.ndarray  # [c_out]
    strides: tuple[int, int] = (1, 1)
    activation: str = "linear"

    def __post_init__(self) -> None:
        k = _f32("Conv2D kernel", self.kernel, 4)
        b = _f32("Conv2D bias", self.bias, 1)
        if b.shape[0] != k.shape[3]:
            raise ModelError(f"Conv2D bias has {b.shape[0]} entries, kernel has {k.shape[3]} filters")
        strides = tuple(int(s) for s in self.strides)
        if len(strides) != 2 or min(strides) < 1:
            raise ModelError(f"Conv2D strides must be two positive ints, got {self.strides}")
        object.__setattr__(self, "kernel", k)
        object.__setattr__(self, "bias", b)
        object.__setattr__(self, "strides", strides)
        _check_activation(self.activation)

    @property
    def filters(self) -> int:
        return int(self.kernel.shape[3])


@dataclass(frozen=True)
class MaxPool2D:
    pool_size: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (2, 2)

    def __post_init__(self) -> None:
        for name in ("pool_size", "strides"):
            v = tuple(int(s) for s in getattr(self, name))
            if len(v) != 2 or min(v) < 1:
                raise ModelError(f"MaxPool2D {name} must be two positive ints, got {v}")
            object.__setattr__(self, name, v)


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Dropout:
    """Identity at inference; kept so the spec mirrors the trained model."""

    rate: float = 0.5


@dataclass(frozen=True)
class Activation:
    activation: str = "relu"

    def __post_init__(self) -> None:
        _check_activation(self.activation)


Layer = Union[Dense, Conv2D, MaxPool2D, Flatten, Dropout, Activation]
_TYPE_NAMES = {
    Dense: "dense",
    Conv2D: "conv2d",
    MaxPool2D: "maxpool2d",
    Flatten: "flatten",
    Dropout: "dropout",
    Activation: "activation",
}


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
                v = _f32(f"preprocessing {name}", v, 1)
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
            shape = _out_shape(layer, shape, i)
            out.append(shape)
        return out

    def weighted_layers(self) -> Iterator[tuple[int, Dense | Conv2D]]:
        for i, layer in enumerate(self.layers):
            if isinstance(layer, (Dense, Conv2D)):
                yield i, layer

    def structure(self) -> list[int]:
        """Widths of the weighted layers (units or filters), e.g. [32, 16, 8, 2]."""
        return [l.kernel.shape[-1] for _, l in self.weighted_layers()]

    def ends_in_softmax(self) -> bool:
        last = [l for l in self.layers if not isinstance(l, Dropout)][-1]
        return getattr(last, "activation", None) == "softmax"

    # ---------------------------------------------------------- serialising
    def architecture(self) -> list[dict]:
        """JSON description of the layers; weights referenced by key in weights.npz."""
        shapes = self.shapes()
        desc = []
        for i, layer in enumerate(self.layers):
            d: dict[str, Any] = {"type": _TYPE_NAMES[type(layer)]}
            if isinstance(layer, Dense):
                d.update(units=layer.units, activation=layer.activation,
                         kernel=f"layer{i}.kernel", bias=f"layer{i}.bias")
            elif isinstance(layer, Conv2D):
                d.update(filters=layer.filters, kernel_size=list(layer.kernel.shape[:2]),
                         strides=list(layer.strides), padding="valid",
                         activation=layer.activation,
                         kernel=f"layer{i}.kernel", bias=f"layer{i}.bias")
            elif isinstance(layer, MaxPool2D):
                d.update(pool_size=list(layer.pool_size), strides=list(layer.strides),
                         padding="valid")
            elif isinstance(layer, Dropout):
                d.update(rate=float(layer.rate))
            elif isinstance(layer, Activation):
                d.update(activation=layer.activation)
            d["input_shape"] = list(shapes[i])
            d["output_shape"] = list(shapes[i + 1])
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
        for i, layer in self.weighted_layers():
            out[f"layer{i}.kernel"] = layer.kernel
            out[f"layer{i}.bias"] = layer.bias
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


def _out_shape(layer: Layer, shape: tuple[int, ...], i: int) -> tuple[int, ...]:
    where = f"layer {i} ({type(layer).__name__})"
    if isinstance(layer, Dense):
        if len(shape) != 1:
            raise ModelError(f"{where} needs a flat input, got shape {shape} (add Flatten)")
        if layer.kernel.shape[0] != shape[0]:
            raise ModelError(f"{where} expects {layer.kernel.shape[0]} inputs, gets {shape[0]}")
        return (layer.units,)
    if isinstance(layer, Conv2D):
        if len(shape) != 3:
            raise ModelError(f"{where} needs an [H, W, C] input, got shape {shape}")
        kh, kw, cin, cout = layer.kernel.shape
        if cin != shape[2]:
            raise ModelError(f"{where} expects {cin} channels, gets {shape[2]}")
        ho = (shape[0] - kh) // layer.strides[0] + 1
        wo = (shape[1] - kw) // layer.strides[1] + 1
        if ho < 1 or wo < 1:
            raise ModelError(f"{where} kernel {kh}x{kw} does not fit input {shape}")
        return (ho, wo, cout)
    if isinstance(layer, MaxPool2D):
        if len(shape) != 3:
            raise ModelError(f"{where} needs an [H, W, C] input, got shape {shape}")
        ph, pw = layer.pool_size
        ho = (shape[0] - ph) // layer.strides[0] + 1
        wo = (shape[1] - pw) // layer.strides[1] + 1
        if ho < 1 or wo < 1:
            raise ModelError(f"{where} pool {ph}x{pw} does not fit input {shape}")
        return (ho, wo, shape[2])
    if isinstance(layer, Flatten):
        return (int(np.prod(shape)),)
    if isinstance(layer, (Dropout, Activation)):
        return shape
    raise ModelError(f"{where}: unsupported layer type {type(layer).__name__}")


# ----------------------------------------------------------------- numpy reference
def _activate(x: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(x, 0.0)
    if act == "softmax":
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
    return x


def _conv2d(x: np.ndarray, layer: Conv2D) -> np.ndarray:
    kh, kw, cin, cout = layer.kernel.shape
    sh, sw = layer.strides
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    win = win[:, ::sh, ::sw]  # [B, Ho, Wo, C, kh, kw]
    y = np.einsum("bhwcij,ijco->bhwo", win, layer.kernel, optimize=True)
    return y + layer.bias


def _maxpool(x: np.ndarray, layer: MaxPool2D) -> np.ndarray:
    ph, pw = layer.pool_size
    win = np.lib.stride_tricks.sliding_window_view(x, (ph, pw), axis=(1, 2))
    win = win[:, :: layer.strides[0], :: layer.strides[1]]
    return win.max(axis=(-2, -1))


def forward(spec: ModelSpec, frames: np.ndarray) -> np.ndarray:
    """Reference forward pass: [B, N] raw frames -> [B, C] float32 probabilities."""
    x = spec.preprocessing.apply(frames)
    for layer in spec.layers:
        if isinstance(layer, Dense):
            x = _activate(x @ layer.kernel + layer.bias, layer.activation)
        elif isinstance(layer, Conv2D):
            x = _activate(_conv2d(x, layer), layer.activation)
        elif isinstance(layer, MaxPool2D):
            x = _maxpool(x, layer)
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
        elif isinstance(layer, Activation):
            x = _activate(x, layer.activation)
        # Dropout: identity
    return np.ascontiguousarray(x, dtype=np.float32)


# ------------------------------------------------------------------ counting (§6)
def count_params(spec: ModelSpec) -> int:
    """Kernels + biases, counted analytically (the paper's TF profiler adds 7)."""
    return int(sum(l.kernel.size + l.bias.size for _, l in spec.weighted_layers()))


def count_flops(spec: ModelSpec) -> int:
    """FLOPs at batch 1 as TensorFlow's profiler counts them (algorithms.md §6)."""
    shapes = spec.shapes()
    total = 0
    for i, layer in enumerate(spec.layers):
        out = shapes[i + 1]
        if isinstance(layer, Dense):
            n_in, n_out = layer.kernel.shape
            total += 2 * n_in * n_out + n_out
        elif isinstance(layer, Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            ho, wo, _ = out
            total += 2 * ho * wo * cout * kh * kw * cin + ho * wo * cout
        elif isinstance(layer, MaxPool2D):
            total += layer.pool_size[0] * layer.pool_size[1] * int(np.prod(out))
        act = getattr(layer, "activation", None)
        if act == "softmax":
            total += 5 * int(np.prod(out))
    return int(total)
