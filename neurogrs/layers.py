"""The layer registry: every layer type a model spec can hold, each owning its facts.

A layer type owns, in one place: its JSON round trip (`to_json` / `from_json`, the
artifact's `model.json` entry), its output shape (which also validates the chain), its
FLOPs at batch 1 (algorithms.md §6, as TensorFlow's profiler counts them), its parameter
count and its numpy reference computation (`apply`). `LAYER_TYPES` maps the JSON type
name to the class. Only the backends that emit code for a layer (Keras, numba, C) keep a
dispatch of their own.

Layouts are Keras' (channels-last): Dense kernel [in, out]; Conv2D kernel
[kh, kw, c_in, c_out]; images [H, W, C].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Union

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
    "LeakyTraces",
    "ForwardFilter",
    "Layer",
    "is_stateful",
    "LAYER_TYPES",
    "layer_from_json",
    "activate",
    "float32_array",
]

ACTIVATIONS = ("linear", "relu", "softmax")
Shape = tuple[int, ...]
ArrayLookup = Callable[[str], np.ndarray]  # "kernel" | "bias" -> the layer's array


def _check_activation(act: str) -> str:
    if act not in ACTIVATIONS:
        raise ModelError(f"activation {act!r} is not supported (use one of {ACTIVATIONS})")
    return act


def float32_array(name: str, arr: Any, ndim: int) -> np.ndarray:
    a = np.ascontiguousarray(arr, dtype=np.float32)
    if a.ndim != ndim:
        raise ModelError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ModelError(f"{name} contains NaN/Inf")
    return a


def _pair(name: str, value: Any, what: str) -> tuple[int, int]:
    v = tuple(int(s) for s in value)
    if len(v) != 2 or min(v) < 1:
        raise ModelError(f"{what} {name} must be two positive ints, got {value}")
    return v  # type: ignore[return-value]


def activate(x: np.ndarray, act: str) -> np.ndarray:
    """The numpy reference of an activation function."""
    if act == "relu":
        return np.maximum(x, 0.0)
    if act == "softmax":
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
    return x


def _softmax_flops(act: str, out: Shape) -> int:
    return 5 * int(np.prod(out)) if act == "softmax" else 0


def _window_out(shape: Shape, size: tuple[int, int], strides: tuple[int, int]) -> tuple[int, int]:
    return ((shape[0] - size[0]) // strides[0] + 1, (shape[1] - size[1]) // strides[1] + 1)


class _NoWeights:
    """Defaults for layers without weights."""

    params: ClassVar[int] = 0

    def flops(self, in_shape: Shape, out_shape: Shape) -> int:
        return 0

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        return {}


class _Weighted:
    """What Dense and Conv2D share: a kernel whose last axis is the units, a bias per unit,
    an activation; their arrays, parameter count and the checks of all three."""

    kernel: np.ndarray
    bias: np.ndarray
    activation: str
    _what: ClassVar[str] = "outputs"

    def _check_weights(self, ndim: int) -> None:
        name = type(self).__name__
        k = float32_array(f"{name} kernel", self.kernel, ndim)
        b = float32_array(f"{name} bias", self.bias, 1)
        if b.shape[0] != k.shape[-1]:
            raise ModelError(f"{name} bias has {b.shape[0]} entries, kernel has "
                             f"{k.shape[-1]} {self._what}")
        object.__setattr__(self, "kernel", k)
        object.__setattr__(self, "bias", b)
        _check_activation(self.activation)

    @property
    def params(self) -> int:
        return int(self.kernel.size + self.bias.size)

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        return {f"layer{i}.kernel": self.kernel, f"layer{i}.bias": self.bias}

    def _weights_json(self, i: int) -> dict:
        return {"activation": self.activation, "kernel": f"layer{i}.kernel",
                "bias": f"layer{i}.bias"}


@dataclass(frozen=True, eq=False)
class Dense(_Weighted):
    kernel: np.ndarray  # [in, out]
    bias: np.ndarray  # [out]
    activation: str = "linear"
    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        self._check_weights(2)

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1])

    def to_json(self, i: int) -> dict:
        return {"type": self.kind, "units": self.units, **self._weights_json(i)}

    @classmethod
    def from_json(cls, d: dict, arr: ArrayLookup) -> "Dense":
        return cls(arr("kernel"), arr("bias"), d.get("activation", "linear"))

    def out_shape(self, shape: Shape, where: str) -> Shape:
        if len(shape) != 1:
            raise ModelError(f"{where} needs a flat input, got shape {shape} (add Flatten)")
        if self.kernel.shape[0] != shape[0]:
            raise ModelError(f"{where} expects {self.kernel.shape[0]} inputs, gets {shape[0]}")
        return (self.units,)

    def flops(self, in_shape: Shape, out_shape: Shape) -> int:
        n_in, n_out = self.kernel.shape
        return 2 * n_in * n_out + n_out + _softmax_flops(self.activation, out_shape)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return activate(x @ self.kernel + self.bias, self.activation)


@dataclass(frozen=True, eq=False)
class Conv2D(_Weighted):
    kernel: np.ndarray  # [kh, kw, c_in, c_out]
    bias: np.ndarray  # [c_out]
    strides: tuple[int, int] = (1, 1)
    activation: str = "linear"
    kind: ClassVar[str] = "conv2d"
    _what: ClassVar[str] = "filters"

    def __post_init__(self) -> None:
        self._check_weights(4)
        object.__setattr__(self, "strides", _pair("strides", self.strides, "Conv2D"))

    @property
    def filters(self) -> int:
        return int(self.kernel.shape[3])

    def to_json(self, i: int) -> dict:
        return {"type": self.kind, "filters": self.filters,
                "kernel_size": list(self.kernel.shape[:2]), "strides": list(self.strides),
                "padding": "valid", **self._weights_json(i)}

    @classmethod
    def from_json(cls, d: dict, arr: ArrayLookup) -> "Conv2D":
        if d.get("padding", "valid") != "valid":
            raise ModelError("only 'valid' padding is supported")
        return cls(arr("kernel"), arr("bias"), tuple(d.get("strides", (1, 1))),
                   d.get("activation", "linear"))

    def out_shape(self, shape: Shape, where: str) -> Shape:
        if len(shape) != 3:
            raise ModelError(f"{where} needs an [H, W, C] input, got shape {shape}")
        kh, kw, cin, cout = self.kernel.shape
        if cin != shape[2]:
            raise ModelError(f"{where} expects {cin} channels, gets {shape[2]}")
        ho, wo = _window_out(shape, (kh, kw), self.strides)
        if ho < 1 or wo < 1:
            raise ModelError(f"{where} kernel {kh}x{kw} does not fit input {shape}")
        return (ho, wo, cout)

    def flops(self, in_shape: Shape, out_shape: Shape) -> int:
        kh, kw, cin, cout = self.kernel.shape
        ho, wo, _ = out_shape
        return (2 * ho * wo * cout * kh * kw * cin + ho * wo * cout
                + _softmax_flops(self.activation, out_shape))

    def apply(self, x: np.ndarray) -> np.ndarray:
        kh, kw, _, _ = self.kernel.shape
        sh, sw = self.strides
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
        win = win[:, ::sh, ::sw]  # [B, Ho, Wo, C, kh, kw]
        y = np.einsum("bhwcij,ijco->bhwo", win, self.kernel, optimize=True)
        return activate(y + self.bias, self.activation)


@dataclass(frozen=True)
class MaxPool2D(_NoWeights):
    pool_size: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (2, 2)
    kind: ClassVar[str] = "maxpool2d"

    def __post_init__(self) -> None:
        for name in ("pool_size", "strides"):
            object.__setattr__(self, name, _pair(name, getattr(self, name), "MaxPool2D"))

    def to_json(self, i: int) -> dict:
        return {"type": self.kind, "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": "valid"}

    @classmethod
    def from_json(cls, d: dict, arr: ArrayLookup) -> "MaxPool2D":
        return cls(tuple(d.get("pool_size", (2, 2))), tuple(d.get("strides", (2, 2))))

    def out_shape(self, shape: Shape, where: str) -> Shape:
        if len(shape) != 3:
            raise ModelError(f"{where} needs an [H, W, C] input, got shape {shape}")
        ho, wo = _window_out(shape, self.pool_size, self.strides)
        if ho < 1 or wo < 1:
            raise ModelError(f"{where} pool {self.pool_size[0]}x{self.pool_size[1]} does not "
                             f"fit input {shape}")
        return (ho, wo, shape[2])

    def flops(self, in_shape: Shape, out_shape: Shape) -> int:
        return self.pool_size[0] * self.pool_size[1] * int(np.prod(out_shape))

    def apply(self, x: np.ndarray) -> np.ndarray:
        win = np.lib.stride_tricks.sliding_window_view(x, self.pool_size, axis=(1, 2))
        win = win[:, :: self.strides[0], :: self.strides[1]]
        return win.max(axis=(-2, -1))


@dataclass(frozen=True)
class Flatten(_NoWeights):
    kind: ClassVar[str] = "flatten"

    def to_json(self, i: int) -> dict:
        return {"type": self.kind}

    @classmethod
    def from_json(cls, d: dict, arr: ArrayLookup) -> "Flatten":
        return cls()

    def out_shape(self, shape: Shape, where: str) -> Shape:
        return (int(np.prod(shape)),)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))


@dataclass(frozen=True)
class Dropout(_NoWeights):
    """Identity at inference; kept so the spec mirrors the trained model."""

    rate: float = 0.5
    kind: ClassVar[str] = "dropout"

    def to_json(self, i: int) -> dict:
        return {"type": self.kind, "rate": float(self.rate)}

    @classmethod
    def from_json(cls, d: dict, arr: ArrayLookup) -> "Dropout":
        return cls(float(d.get("rate", 0.0)))

    def out_shape(self, shape: Shape, where: str) -> Shape:
        return shape

    def apply(self, x: np.ndarray) -> np.ndarray:
        return x


@dataclass(frozen=True)
class Activation(_NoWeights):
    activation: str = "relu"
    kind: ClassVar[str] = "activation"

    def __post_init__(self) -> None:
        _check_activation(self.activation)

    def to_json(self, i: int) -> dict:
        return {"type": self.kind, "activation": self.activation}

    @classmethod
    def from_json(cls, d: dict, arr: ArrayLookup) -> "Activation":
        return cls(d.get("activation", "linear"))

    def out_shape(self, shape: Shape, where: str) -> Shape:
        return shape

    def flops(self, in_shape: Shape, out_shape: Shape) -> int:
        return _softmax_flops(self.activation, out_shape)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return activate(x, self.activation)


# The stateful layers (temporal context) live in their own module; registered here so
# that every spec, artifact and engine sees one registry.
from neurogrs.layers_temporal import ForwardFilter, LeakyTraces  # noqa: E402

Layer = Union[Dense, Conv2D, MaxPool2D, Flatten, Dropout, Activation, LeakyTraces,
              ForwardFilter]
LAYER_TYPES: dict[str, type] = {cls.kind: cls for cls in
                                (Dense, Conv2D, MaxPool2D, Flatten, Dropout, Activation,
                                 LeakyTraces, ForwardFilter)}


def is_stateful(layer: Layer) -> bool:
    """True for layers that carry state from frame to frame (layers_temporal)."""
    return bool(getattr(layer, "stateful", False))


def layer_from_json(d: dict, arrays: dict[str, np.ndarray]) -> Layer:
    """A layer from its model.json entry; its arrays are looked up by the names it records."""
    kind = d.get("type")
    if kind not in LAYER_TYPES:
        raise ModelError(f"unknown layer type {kind!r} (known: {', '.join(LAYER_TYPES)})")

    def arr(key: str) -> np.ndarray:
        name = d.get(key)
        if name not in arrays:
            raise ModelError(f"weights.npz has no array {name!r}")
        return arrays[name]

    return LAYER_TYPES[kind].from_json(d, arr)
