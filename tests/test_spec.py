"""Model spec: parameter and FLOP counts (algorithms.md §1, §6), validation, hashing."""
import numpy as np
import pytest

from neurogrs.errors import ModelError
from neurogrs.spec import Dense, ModelSpec, Preprocessing, count_flops, forward
from neurogrs.zoo import init_spec

POS = np.random.default_rng(0).uniform(0, 512, (273, 2))


@pytest.mark.parametrize("name, params", [("nn1", 9450), ("nn2", 8834), ("cnn1", 28026), ("cnn2", 27410)])
def test_param_counts_at_273_neurons(name, params):
    spec = init_spec(name, 273, np.random.default_rng(0), positions=POS)
    assert spec.count_params() == params


def test_dense_flops_follow_tf_profiler_convention():
    spec = init_spec("nn1", 273, np.random.default_rng(0))
    # Dense 2*in*out + out per layer, softmax 5 per output, ReLU free
    expected = sum(2 * i * o + o for i, o in [(273, 32), (32, 16), (16, 8), (8, 2)]) + 5 * 2
    assert count_flops(spec) == expected == 18852


def test_conv_flops_follow_tf_profiler_convention():
    spec = init_spec("cnn2", 273, np.random.default_rng(0), positions=POS)
    conv1 = 2 * 16 * 16 * 32 * 4 * 1 + 16 * 16 * 32  # 17x17 -> 16x16x32
    pool = 4 * 8 * 8 * 32
    conv2 = 2 * 7 * 7 * 16 * 4 * 32 + 7 * 7 * 16
    dense = 2 * 784 * 32 + 32 + 2 * 32 * 2 + 2
    assert count_flops(spec) == conv1 + pool + conv2 + dense + 5 * 2


def test_softmax_output_sums_to_one_and_is_float32():
    spec = init_spec("cnn1", 50, np.random.default_rng(1), random_bias=True)
    x = np.random.default_rng(2).normal(size=(7, 50)).astype(np.float32)
    p = forward(spec, x)
    assert p.dtype == np.float32 and p.shape == (7, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)


def test_mismatched_chain_is_rejected_with_the_layer_named():
    pre = Preprocessing(10)
    with pytest.raises(ModelError, match="layer 1 .*expects 5 inputs, gets 4"):
        ModelSpec(pre, (Dense(np.zeros((10, 4)), np.zeros(4), "relu"),
                        Dense(np.zeros((5, 2)), np.zeros(2), "softmax")))


def test_unknown_activation_and_nan_weights_are_rejected():
    with pytest.raises(ModelError, match="activation 'tanh'"):
        Dense(np.zeros((3, 2)), np.zeros(2), "tanh")
    with pytest.raises(ModelError, match="NaN"):
        Dense(np.full((3, 2), np.nan), np.zeros(2))


def test_content_hash_changes_with_one_weight():
    spec = init_spec("nn2", 20, np.random.default_rng(0))
    k = spec.layers[0].kernel.copy()
    k[3, 4] += 1e-3
    other = ModelSpec(spec.preprocessing, (Dense(k, spec.layers[0].bias, "relu"),) + spec.layers[1:],
                      spec.label_names)
    assert other.content_hash() != spec.content_hash()
    assert init_spec("nn2", 20, np.random.default_rng(0)).content_hash() == spec.content_hash()


def test_sparse_summary_counts_nonzeros_and_effective_flops():
    spec = init_spec("nn2", 20, np.random.default_rng(0))
    k = spec.layers[0].kernel.copy()
    k[:10] = 0.0
    sparse = ModelSpec(spec.preprocessing, (Dense(k, spec.layers[0].bias, "relu"),) + spec.layers[1:],
                       spec.label_names)
    s = sparse.summary()
    zeros = s["params"] - s["nonzero_params"]
    assert zeros >= 10 * 32
    assert s["effective_flops"] == s["flops"] - 2 * zeros


@pytest.mark.parametrize("name", ["nn1", "cnn1"])
def test_empty_batch_gives_empty_output(name):
    spec = init_spec(name, 20, np.random.default_rng(0), positions=np.random.default_rng(1).uniform(size=(20, 2)))
    assert forward(spec, np.zeros((0, 20), np.float32)).shape == (0, 2)


# ------------------------------------------------------------------ the layer registry
def test_every_layer_type_round_trips_through_its_json_entry():
    from neurogrs.layers import LAYER_TYPES, layer_from_json
    from neurogrs.zoo import init_spec

    rng = np.random.default_rng(3)
    seen = set()
    from neurogrs.layers_temporal import LeakyTraces, fit_forward_filter

    base = init_spec("nn1", 40, rng, random_bias=True)
    temporal = ModelSpec(base.preprocessing, [LeakyTraces(np.array([0.5], np.float32)),
                                              Dense(np.ones((80, 2), np.float32), np.zeros(2, np.float32), "softmax"),
                                              fit_forward_filter(np.array([0, 1, 1, 0]), 2)])
    for name in ("nn1", "cnn1", temporal):
        spec = init_spec(name, 40, rng, random_bias=True) if isinstance(name, str) else name
        arrays = spec.arrays()
        for i, (layer, entry) in enumerate(zip(spec.layers, spec.architecture())):
            back = layer_from_json(entry, arrays)
            assert type(back) is type(layer)
            assert back.to_json(i) == layer.to_json(i)
            for key, arr in layer.arrays(i).items():
                np.testing.assert_array_equal(back.arrays(i)[key], arr)
            seen.add(layer.kind)
    assert seen | {"activation"} == set(LAYER_TYPES)


def test_registry_refuses_unknown_types_and_missing_arrays():
    from neurogrs.errors import ModelError
    from neurogrs.layers import layer_from_json

    with pytest.raises(ModelError, match="unknown layer type 'lstm'"):
        layer_from_json({"type": "lstm"}, {})
    with pytest.raises(ModelError, match="no array 'layer0.kernel'"):
        layer_from_json({"type": "dense", "kernel": "layer0.kernel", "bias": "layer0.bias"}, {})


def test_flops_and_params_are_summed_from_the_layers():
    from neurogrs.layers import Activation as Act
    from neurogrs.zoo import init_spec

    spec = init_spec("cnn1", 273, np.random.default_rng(0))
    shapes = spec.shapes()
    assert spec.count_params() == 28_026
    assert spec.count_flops() == sum(l.flops(shapes[i], shapes[i + 1])
                                     for i, l in enumerate(spec.layers))
    assert Act("softmax").flops((2,), (2,)) == 10 and Act("relu").flops((2,), (2,)) == 0
