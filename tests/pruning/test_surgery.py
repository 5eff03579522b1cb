"""Unit surgery: a pruned spec computes what the original computes with the unit forced to 0.

The reference below is an independent numpy forward pass (loops over kernel taps, not the
spec's own `forward`), with a hook that zeroes chosen units after a layer's activation.
"""
import warnings

import numpy as np
import pytest

from neurogrs.errors import ModelError
from neurogrs.pruning.surgery import (
    full_masks,
    prunable_layers,
    remove_units,
    slice_masked,
    zero_masked,
)
from neurogrs.spec import Activation, Conv2D, Dense, Flatten, MaxPool2D, forward
from neurogrs.zoo import init_spec

pytestmark = pytest.mark.filterwarnings("ignore:session has no neuron positions")

N = 40
TOL = 1e-6


def _act(x, name):
    if name == "relu":
        return np.maximum(x, 0)
    if name == "softmax":
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return x


def reference_forward(spec, frames, silenced=None):
    """Forward pass in float64; `silenced` = {layer index: units whose output is forced to 0}."""
    silenced = silenced or {}
    x = spec.preprocessing.apply(frames).astype(np.float64)
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, Dense):
            x = _act(x @ layer.kernel.astype(np.float64) + layer.bias, layer.activation)
        elif isinstance(layer, Conv2D):
            kh, kw, _, cout = layer.kernel.shape
            sh, sw = layer.strides
            ho = (x.shape[1] - kh) // sh + 1
            wo = (x.shape[2] - kw) // sw + 1
            y = np.zeros((x.shape[0], ho, wo, cout)) + layer.bias
            for a in range(kh):
                for b in range(kw):
                    tap = x[:, a:a + (ho - 1) * sh + 1:sh, b:b + (wo - 1) * sw + 1:sw, :]
                    y += tap @ layer.kernel[a, b].astype(np.float64)
            x = _act(y, layer.activation)
        elif isinstance(layer, MaxPool2D):
            (ph, pw), (sh, sw) = layer.pool_size, layer.strides
            ho = (x.shape[1] - ph) // sh + 1
            wo = (x.shape[2] - pw) // sw + 1
            y = np.full((x.shape[0], ho, wo, x.shape[3]), -np.inf)
            for a in range(ph):
                for b in range(pw):
                    y = np.maximum(y, x[:, a:a + (ho - 1) * sh + 1:sh, b:b + (wo - 1) * sw + 1:sw])
            x = y
        elif isinstance(layer, Flatten):
            x = x.reshape(len(x), -1)
        elif isinstance(layer, Activation):
            x = _act(x, layer.activation)
        if i in silenced:
            x = x.copy()
            x[..., list(silenced[i])] = 0.0
    return x


def _cases():
    for name in ("nn1", "nn2", "cnn1", "cnn2"):
        with warnings.catch_warnings():  # collection time: no position warning
            warnings.simplefilter("ignore")
            spec = init_spec(name, N, np.random.default_rng(7), random_bias=True)
        for layer in prunable_layers(spec):
            yield pytest.param(name, layer, id=f"{name}-layer{layer}")


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).normal(0, 1.5, (64, N)).astype(np.float32)


@pytest.mark.parametrize("name, layer", list(_cases()))
def test_removing_a_unit_equals_forcing_its_output_to_zero(name, layer, frames):
    spec = init_spec(name, N, np.random.default_rng(7), random_bias=True)
    width = spec.layers[layer].kernel.shape[-1]
    rng = np.random.default_rng(layer)
    full = reference_forward(spec, frames)
    changed = 0.0
    for units in ([int(rng.integers(width))], [0, width - 1], sorted(rng.choice(width, 3, replace=False))):
        pruned = remove_units(spec, layer, units)
        assert pruned.layers[layer].kernel.shape[-1] == width - len(units)
        want = reference_forward(spec, frames, {layer: units})
        assert np.abs(forward(pruned, frames) - want).max() <= TOL
        changed = max(changed, float(np.abs(full - want).max()))
    assert changed > 1e-4  # the reference sees the removal (a single unit may be dead ReLU)


@pytest.mark.parametrize("name", ["nn1", "nn2", "cnn1", "cnn2"])
def test_zero_masked_equals_slice_masked(name, frames):
    spec = init_spec(name, N, np.random.default_rng(3), random_bias=True)
    rng = np.random.default_rng(11)
    masks = full_masks(spec)
    for i, m in masks.items():
        off = rng.choice(m.size, m.size // 3, replace=False)
        m[off] = False
    sliced = slice_masked(spec, masks)
    zeroed = zero_masked(spec, masks)
    assert sliced.structure()[:-1] == [int(m.sum()) for m in masks.values()]
    assert zeroed.structure() == spec.structure()
    silenced = {i: np.flatnonzero(~m) for i, m in masks.items()}
    want = reference_forward(spec, frames, silenced)
    assert np.abs(forward(sliced, frames) - want).max() <= TOL
    assert np.abs(forward(zeroed, frames) - want).max() <= TOL
    for i, m in masks.items():  # the masked units' own weights are exactly zero
        assert not zeroed.layers[i].kernel[..., ~m].any() and not zeroed.layers[i].bias[~m].any()


def test_conv_to_dense_rows_are_strided_by_channels():
    spec = init_spec("cnn2", N, np.random.default_rng(0))  # conv 16 -> flatten -> dense
    conv = prunable_layers(spec)[1]
    dense = next(i for i in range(conv + 1, len(spec.layers)) if isinstance(spec.layers[i], Dense))
    pruned = remove_units(spec, conv, [5])
    rows = np.arange(spec.layers[dense].kernel.shape[0])
    keep = rows[rows % 16 != 5]
    np.testing.assert_array_equal(pruned.layers[dense].kernel, spec.layers[dense].kernel[keep])


def test_prunable_layers_exclude_the_output_layer():
    spec = init_spec("nn1", N, np.random.default_rng(0))
    assert prunable_layers(spec) == [0, 1, 2]
    assert set(full_masks(spec)) == {0, 1, 2} and all(m.all() for m in full_masks(spec).values())


@pytest.mark.parametrize("call, match", [
    (lambda s: remove_units(s, 4, [0]), "not prunable"),
    (lambda s: remove_units(s, 0, [32]), "out of range"),
    (lambda s: remove_units(s, 0, [1, 1]), "twice"),
    (lambda s: remove_units(s, 2, range(8)), "empty"),
    (lambda s: remove_units(s, 0, []), "at least one"),
    (lambda s: zero_masked(s, {0: np.zeros(32, bool)}), "removes every unit"),
    (lambda s: slice_masked(s, {1: np.ones(15, bool), 9: np.ones(2, bool)}), r"bool\[16\][\s\S]*key 9"),
])
def test_bad_surgery_is_a_clear_error(call, match):
    spec = init_spec("nn1", N, np.random.default_rng(0))
    with pytest.raises(ModelError, match=match):
        call(spec)
