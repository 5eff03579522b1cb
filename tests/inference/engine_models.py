"""Models the engine conformance suite runs on: zoo models at several N, pruned variants
(units removed by slicing kernels), sparse TQ-style variants (small weights zeroed, the
rest rounded), a hand-built model with standalone activations, and models with the real
session's preprocessing (mean/scale from its traces)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from neurogrs.spec import (
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ModelSpec,
    Preprocessing,
)
from neurogrs.zoo import init_spec

NELPY = Path(os.environ.get("NEUROGRS_NELPY") or Path(__file__).resolve().parents[3] / "shared"
             / "data" / "nelpy_linear_track" / "nelpy_linear_track.npz")


def load_traces(path: Path = NELPY) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        return np.ascontiguousarray(npz["traces"], dtype=np.float32)


def zoo(name: str, n: int, seed: int, positions=None) -> ModelSpec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no positions: index order (intended here)
        return init_spec(name, n, np.random.default_rng(seed), positions=positions,
                         random_bias=True)


def _replace(spec: ModelSpec, layers, name: str, pre: Preprocessing | None = None) -> ModelSpec:
    return ModelSpec(pre or spec.preprocessing, tuple(layers), spec.label_names, name=name)


def remove_units(spec: ModelSpec, layer_index: int, keep: np.ndarray) -> ModelSpec:
    """Keep only units/filters `keep` of weighted layer `layer_index` (physical slicing),
    slicing the inputs of the next weighted layer to match (through Flatten/MaxPool)."""
    layers = list(spec.layers)
    shapes = spec.shapes()
    keep = np.asarray(sorted(keep))
    lay = layers[layer_index]
    layers[layer_index] = type(lay)(**{**_fields(lay), "kernel": lay.kernel[..., keep],
                                       "bias": lay.bias[keep]})
    for j in range(layer_index + 1, len(layers)):
        nxt = layers[j]
        if isinstance(nxt, Conv2D):
            layers[j] = Conv2D(nxt.kernel[:, :, keep, :], nxt.bias, nxt.strides, nxt.activation)
            break
        if isinstance(nxt, Dense):
            in_shape = shapes[j]
            flat_from = next((shapes[k - 1] for k in range(j, layer_index, -1)
                              if isinstance(layers[k - 1], Flatten)), None)
            if flat_from is not None and len(flat_from) == 3:
                h, w, c = flat_from
                rows = (np.arange(h * w)[:, None] * c + keep[None, :]).ravel()
            else:
                rows = keep
            assert in_shape[0] == nxt.kernel.shape[0]
            layers[j] = Dense(nxt.kernel[rows, :], nxt.bias, nxt.activation)
            break
    name = spec.name if spec.name.endswith("_pruned") else spec.name + "_pruned"
    return _replace(spec, layers, name)


def _fields(layer):
    if isinstance(layer, Dense):
        return {"kernel": layer.kernel, "bias": layer.bias, "activation": layer.activation}
    return {"kernel": layer.kernel, "bias": layer.bias, "strides": layer.strides,
            "activation": layer.activation}


def sparsify(spec: ModelSpec, zero_fraction: float, decimals: int = 2) -> ModelSpec:
    """TQ-style: weights below the zero_fraction quantile of |w| set to 0, rest rounded."""
    layers = []
    for layer in spec.layers:
        if isinstance(layer, (Dense, Conv2D)):
            k = layer.kernel.copy()
            thr = np.quantile(np.abs(k), zero_fraction)
            k[np.abs(k) < thr] = 0.0
            k = np.round(k, decimals)
            b = np.round(layer.bias, decimals)
            layers.append(type(layer)(**{**_fields(layer), "kernel": k, "bias": b}))
        else:
            layers.append(layer)
    return _replace(spec, layers, spec.name + "_sparse")


def pruned_nn1(n: int = 273) -> ModelSpec:
    s = zoo("nn1", n, 11)
    s = remove_units(s, 0, np.r_[0:20])
    s = remove_units(s, 1, np.array([0, 2, 3, 5, 7, 11, 12, 13, 15]))
    return remove_units(s, 2, np.array([1, 2, 4, 6, 7]))


def pruned_cnn1(n: int = 273) -> ModelSpec:
    s = zoo("cnn1", n, 12)
    s = remove_units(s, 0, np.arange(0, 32, 2))  # conv filters 32 -> 16
    s = remove_units(s, 2, np.array([0, 1, 4, 5, 9, 10, 14]))  # conv 16 -> 7, through Flatten
    return remove_units(s, 5, np.r_[0:12])  # dense 32 -> 12


def hand_model(n: int = 12) -> ModelSpec:
    """Standalone Activation layers (first layer too), linear Dense, separate softmax."""
    rng = np.random.default_rng(13)
    k1 = rng.normal(0, 0.5, (n, 7)).astype(np.float32)
    k2 = rng.normal(0, 0.5, (7, 3)).astype(np.float32)
    layers = (Activation("relu"), Flatten(), Dense(k1, rng.normal(0, 0.1, 7), "linear"),
              Activation("relu"), Dropout(0.2), Dense(k2, rng.normal(0, 0.1, 3), "linear"),
              Activation("linear"), Activation("softmax"))
    pre = Preprocessing(n, mean=rng.normal(0, 1, n), scale=rng.uniform(0.5, 2, n))
    return ModelSpec(pre, layers, ("a", "b", "c"), name="hand")


def with_session_preprocessing(spec: ModelSpec, traces: np.ndarray) -> ModelSpec:
    """The spec with mean/scale from the session's traces (z-scoring per neuron)."""
    p = spec.preprocessing
    mean = traces.mean(axis=0)
    scale = 1.0 / (traces.std(axis=0) + 1e-3)
    pre = Preprocessing(p.n_inputs, mean=mean, scale=scale, index=p.index, grid=p.grid)
    return _replace(spec, spec.layers, spec.name + "_session", pre)


def all_models(traces: np.ndarray) -> dict[str, ModelSpec]:
    rng = np.random.default_rng(5)
    positions31 = rng.uniform(0, 100, (31, 2))
    return {
        "nn1_273": zoo("nn1", 273, 1),
        "nn1_10": zoo("nn1", 10, 2),
        "nn2_273": zoo("nn2", 273, 3),
        "nn2_10": zoo("nn2", 10, 4),
        "cnn1_273": zoo("cnn1", 273, 5),
        "cnn1_20": zoo("cnn1", 20, 6),
        "cnn2_273": zoo("cnn2", 273, 7),
        "cnn2_20": zoo("cnn2", 20, 8),
        "nn1_273_pruned": pruned_nn1(),
        "cnn1_273_pruned": pruned_cnn1(),
        "nn1_273_sparse": sparsify(zoo("nn1", 273, 9), 0.85, 2),
        "cnn1_273_sparse": sparsify(zoo("cnn1", 273, 10), 0.8, 3),
        "hand_12": hand_model(),
        "nn2_31_session": with_session_preprocessing(zoo("nn2", 31, 14), traces),
        "cnn2_31_session": with_session_preprocessing(zoo("cnn2", 31, 15, positions31), traces),
    }
