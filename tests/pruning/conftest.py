"""Small simulated sessions and specs for the pruning tests."""
import numpy as np
import pytest

from neurogrs.simulate import simulate_session
from neurogrs.splits import SplitSettings, make_split


@pytest.fixture(scope="session")
def small_session():
    """40 neurons, 800 frames: enough for every part of an 8:1:1 split."""
    return simulate_session(n_neurons=40, n_frames=800, seed=3)


@pytest.fixture(scope="session")
def small_split(small_session):
    return make_split(small_session.labels, SplitSettings(blocks=4), np.random.default_rng(0))


def fitted_mlp(session, split, hidden=12, seed=0):
    """An nn2-shaped spec with signal, numpy only: random ReLU features, then the output
    layer solved by least squares on the balanced training part."""
    from neurogrs.spec import Dense, Dropout, ModelSpec, Preprocessing

    rng = np.random.default_rng(seed)
    n = session.n_neurons
    w1 = rng.normal(0, 1 / np.sqrt(n), (n, hidden)).astype(np.float32)
    b1 = rng.normal(0, 0.1, hidden).astype(np.float32)
    x = session.traces[split.balanced]
    h = np.maximum(x @ w1 + b1, 0)
    y = np.eye(2)[session.labels[split.balanced]]
    sol, *_ = np.linalg.lstsq(np.c_[h, np.ones(len(h))], y * 4 - 2, rcond=None)
    layers = (Dense(w1, b1, "relu"), Dropout(0.5),
              Dense(sol[:-1].astype(np.float32), sol[-1].astype(np.float32), "softmax"))
    return ModelSpec(Preprocessing(n), layers, ("0", "1"), name="mlp")


@pytest.fixture(scope="session")
def small_data(small_session, small_split):
    from neurogrs.pruning.data import prepare

    spec = fitted_mlp(small_session, small_split)
    return spec, prepare(small_session, small_split, spec)


@pytest.fixture(scope="session")
def trained_nn1(small_session, small_split):
    """nn1 (32-16-8-2) on 40 neurons, trained 30 epochs with the real trainer."""
    from neurogrs.pruning.data import prepare
    from neurogrs.pruning.fit import FitSettings, fit
    from neurogrs.zoo import init_spec

    spec = init_spec("nn1", small_session.n_neurons, np.random.default_rng(0))
    data = prepare(small_session, small_split, spec)
    spec = fit(spec, data.x_train, data.y_train, FitSettings(epochs=30), seed=0)
    return spec, data
