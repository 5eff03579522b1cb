"""Engines on *trained* models (not only random weights) agree with Keras on session frames.

Trained weights grow larger than glorot-initialised ones, so this is where summation order
and FMA would show first. Tolerance: 1e-5 max abs error on probabilities (issue 3).
"""
import numpy as np
import pytest

from neurogrs.artifact import load_artifact, save_artifact
from neurogrs.inference import load_engine
from neurogrs.simulate import simulate_session
from neurogrs.pruning.train import TrainSettings, train

TOL = 1e-5


@pytest.fixture(scope="module")
def session():
    return simulate_session(n_neurons=60, n_frames=1500, seed=11)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["nn1", "cnn1"])
def test_trained_model_engines_match_keras(model, session, tmp_path_factory):
    keras = pytest.importorskip("keras")
    result = train(session, TrainSettings(model=model, epochs=8, seed=2), progress=False)
    path = save_artifact(result.spec, tmp_path_factory.mktemp(model) / "art",
                         keras_save=result.keras_model.save)
    art = load_artifact(path)
    reference = keras.saving.load_model(art.keras_path, compile=False)
    frames = session.traces
    ref = np.asarray(reference(art.spec.preprocessing.apply(frames), training=False))
    for name in ("numpy", "numba", "c"):
        engine = load_engine(art, name)
        batch = engine.predict_batch(frames)
        single = np.stack([engine.predict(f) for f in frames[:300]])
        err_b = float(np.abs(batch - ref).max())
        err_s = float(np.abs(single - ref[:300]).max())
        assert err_b <= TOL and err_s <= TOL, f"{name}: batch {err_b:.1e}, single {err_s:.1e}"
