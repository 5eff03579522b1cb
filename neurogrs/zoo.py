"""The model zoo: the paper's four initial models for any number of neurons (§1), and
their temporal-context variants (docs/temporal.md).

A blueprint is a tuple of layer descriptions, independent of any framework, and only this
module reads it: `init_spec` builds a randomly initialised `ModelSpec` with numpy alone
(glorot-uniform kernels, zero biases). Training starts from it (`neurogrs.pruning.train`),
and engine and codegen tests use it without TensorFlow.

Temporal variants (causal: past and present frames only) wrap a frame-wise model:
`<model>_traces` puts LeakyTraces at `TRACE_TAUS` in front (per neuron, or per pixel as
extra image channels for CNNs), `<model>_filter` appends a ForwardFilter after the
softmax, `<model>_traces_filter` both. Every temporal variant also drops out its core's
inputs while training (`INPUT_DROPOUT`; an identity at inference): decoding a later
session needs a core that does not lean on a few neurons. A freshly initialised
ForwardFilter holds a placeholder (sticky transitions, uniform prior); training fits it
from the labels.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurogrs.errors import ConfigError
from neurogrs.layers_temporal import ForwardFilter, LeakyTraces, decays_from_taus
from neurogrs.rearrange import grid_side, rearrangement_index
from neurogrs.spec import (
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ModelSpec,
    Preprocessing,
)

__all__ = ["ZOO", "FRAMEWISE", "TRACE_TAUS", "INPUT_DROPOUT", "TEMPORAL", "blueprint", "is_cnn",
           "init_spec", "spec_from_blueprint"]

Blueprint = tuple[tuple[Any, ...], ...]

# ("dense", units, activation) | ("conv", filters, (kh, kw), activation)
# ("maxpool", (ph, pw)) | ("dropout", rate) | ("flatten",)
# ("traces", taus in frames) | ("filter",)   (stateful: docs/temporal.md)
FRAMEWISE: dict[str, Blueprint] = {
    "nn1": (
        ("dense", 32, "relu"), ("dense", 16, "relu"), ("dense", 8, "relu"),
        ("dropout", 0.5), ("dense", 2, "softmax"),
    ),
    "nn2": (("dense", 32, "relu"), ("dropout", 0.5), ("dense", 2, "softmax")),
    "cnn1": (
        ("conv", 32, (2, 2), "relu"), ("maxpool", (2, 2)), ("conv", 16, (2, 2), "relu"),
        ("dropout", 0.5), ("flatten",),
        ("dense", 32, "relu"), ("dropout", 0.5), ("dense", 16, "relu"), ("dropout", 0.5),
        ("dense", 8, "relu"), ("dropout", 0.5), ("dense", 2, "softmax"),
    ),
    "cnn2": (
        ("conv", 32, (2, 2), "relu"), ("maxpool", (2, 2)), ("conv", 16, (2, 2), "relu"),
        ("dropout", 0.5), ("flatten",), ("dense", 32, "relu"), ("dropout", 0.5),
        ("dense", 2, "softmax"),
    ),
}

# Trace time constants in frames (10 Hz): chosen on the simulated suite's session-1
# validation parts (docs/temporal.md, `python -m neurogrs.bench.temporal --taus`).
TRACE_TAUS: tuple[float, ...] = (10.0,)


# Dropout on the core's inputs (the neurons and their traces) of every temporal variant,
# training only. Measured across simulated sessions (docs/temporal.md, "Input dropout"):
# without it the temporal cores fit session 1's neurons and carry little to later sessions.
INPUT_DROPOUT = 0.35


def _temporal(bp: Blueprint, traces: bool, filt: bool) -> Blueprint:
    return (((("traces", TRACE_TAUS),) if traces else ()) + (("dropout", INPUT_DROPOUT),) + bp
            + ((("filter",),) if filt else ()))


TEMPORAL: dict[str, Blueprint] = {
    f"{name}{suffix}": _temporal(bp, "traces" in suffix, "filter" in suffix)
    for name, bp in FRAMEWISE.items()
    for suffix in ("_traces", "_filter", "_traces_filter")
}

ZOO: dict[str, Blueprint] = {**FRAMEWISE, **TEMPORAL}


def blueprint(name: str, n_classes: int = 2) -> Blueprint:
    if name not in ZOO:
        raise ConfigError(f"unknown model {name!r}: choose one of {sorted(ZOO)} or a .keras file")
    bp = ZOO[name]
    if n_classes != 2:  # widen the output layer (the last dense) for multi-class labels
        last = max(i for i, layer in enumerate(bp) if layer[0] == "dense")
        bp = bp[:last] + (("dense", n_classes, "softmax"),) + bp[last + 1:]
    return bp


def is_cnn(bp: Blueprint) -> bool:
    return any(layer[0] == "conv" for layer in bp)


def _glorot(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def _placeholder_filter(k: int) -> ForwardFilter:
    """Sticky transitions (stay 0.9), uniform prior: valid until training fits it."""
    trans = np.full((k, k), 0.1 / (k - 1), np.float32)
    np.fill_diagonal(trans, 0.9)
    return ForwardFilter(trans, np.full(k, 1.0 / k, np.float32))


def spec_from_blueprint(
    bp: Blueprint,
    n_neurons: int,
    rng: np.random.Generator,
    positions: np.ndarray | None = None,
    label_names: tuple[str, ...] | None = None,
    name: str = "model",
    random_bias: bool = False,
) -> ModelSpec:
    """A ModelSpec with glorot-uniform kernels (biases zero unless `random_bias`)."""
    if is_cnn(bp):
        n = grid_side(n_neurons)
        pre = Preprocessing(n_neurons, index=rearrangement_index(n_neurons, positions), grid=n)
        shape: tuple[int, ...] = (n, n, 1)
    else:
        pre = Preprocessing(n_neurons)
        shape = (n_neurons,)
    layers = []
    for desc in bp:
        kind = desc[0]
        if kind == "dense":
            units, act = desc[1], desc[2]
            fan_in = int(np.prod(shape))
            k = _glorot(rng, (fan_in, units), fan_in, units)
            b = rng.normal(0, 0.1, units).astype(np.float32) if random_bias else np.zeros(units, np.float32)
            layers.append(Dense(k, b, act))
            shape = (units,)
        elif kind == "conv":
            filters, (kh, kw), act = desc[1], desc[2], desc[3]
            cin = shape[2]
            k = _glorot(rng, (kh, kw, cin, filters), kh * kw * cin, kh * kw * filters)
            b = rng.normal(0, 0.1, filters).astype(np.float32) if random_bias else np.zeros(filters, np.float32)
            layers.append(Conv2D(k, b, (1, 1), act))
            shape = (shape[0] - kh + 1, shape[1] - kw + 1, filters)
        elif kind == "maxpool":
            ph, pw = desc[1]
            layers.append(MaxPool2D((ph, pw), (ph, pw)))
            shape = ((shape[0] - ph) // ph + 1, (shape[1] - pw) // pw + 1, shape[2])
        elif kind == "dropout":
            layers.append(Dropout(desc[1]))
        elif kind == "flatten":
            layers.append(Flatten())
            shape = (int(np.prod(shape)),)
        elif kind == "traces":
            layers.append(LeakyTraces(decays_from_taus(desc[1])))
            shape = (*shape[:-1], shape[-1] * (1 + len(desc[1])))
        elif kind == "filter":
            layers.append(_placeholder_filter(shape[-1]))
        else:
            raise ConfigError(f"unknown blueprint layer {kind!r}")
    n_out = shape[-1]
    labels = label_names or tuple(str(i) for i in range(n_out))
    return ModelSpec(pre, tuple(layers), labels, name=name)


def init_spec(
    name: str,
    n_neurons: int,
    rng: np.random.Generator,
    positions: np.ndarray | None = None,
    random_bias: bool = False,
    n_classes: int = 2,
) -> ModelSpec:
    """A zoo model with random weights, built with numpy alone (output width `n_classes`)."""
    return spec_from_blueprint(blueprint(name, n_classes), n_neurons, rng, positions, name=name,
                               random_bias=random_bias)
