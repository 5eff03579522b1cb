"""A whole pruning run compiles the trainer a fixed number of times, not once per shape.

Every trace of the trainer is an XLA compile (2-12 s on the shared machine, against 0.2 s
for a whole nn1 fine-tuning), so a search must reuse the programs the initial training
compiled: the trace counter in the traced function (`fit_graph.trace_count`) is the
measurement.
"""
import numpy as np

from neurogrs.pruning import fit_graph as G
from neurogrs.pruning.data import prepare
from neurogrs.pruning.fit import CALL_STEPS, FitSettings, fit, fit_many, row_bucket
from neurogrs.pruning.grs import grs
from neurogrs.pruning.jgrs import jgrs
from neurogrs.pruning.settings import PruneSettings
from neurogrs.pruning.surgery import full_masks
from neurogrs.zoo import spec_from_blueprint

# an architecture no other test uses, so its first compile happens here
BLUEPRINT = (("dense", 12, "relu"), ("dense", 6, "relu"), ("dropout", 0.4),
             ("dense", 2, "softmax"))


def test_initial_training_and_both_searches_compile_twice_in_all(small_session, small_split):
    spec = spec_from_blueprint(BLUEPRINT, small_session.n_neurons, np.random.default_rng(0))
    data = prepare(small_session, small_split, spec)
    before = G.trace_count()
    # the initial training, chunked for a progress bar (1-epoch calls), 1 candidate slot
    spec = fit(spec, data.x_train, data.y_train, FitSettings(epochs=12), seed=0,
               progress=lambda done, loss: None)
    assert G.trace_count() - before == 1
    s = PruneSettings(retrain_epochs=3, tau_s=0.95)
    g = grs(spec, data, s, np.random.default_rng(0))  # 2 candidate slots: one new program
    assert g.retrainings > 2  # it really fine-tuned, more than one iteration
    assert G.trace_count() - before == 2
    j = jgrs(spec, data, s, np.random.default_rng(0))  # jumps (1 slot) and GRS (2): no new one
    assert any(st.phase == 1 for st in j.trajectory)
    # other epochs, other step counts, and less data within the same row bucket: no new one
    n = len(data.y_train)
    smaller = next(m for m in range(n - 1, 0, -1) if row_bucket(m) != row_bucket(n)) + 1
    assert smaller < n
    fit_many(spec, [full_masks(spec)], data.x_train[:smaller], data.y_train[:smaller],
             FitSettings(epochs=5, batch_size=32), seed=1)
    assert G.trace_count() - before == 2


def test_long_training_runs_in_fixed_size_calls_and_matches_one_pass(small_session,
                                                                      small_split):
    """More steps than one call holds: the calls continue Adam and the step counter, so
    the result does not depend on where the calls are cut (same as one long call)."""
    spec = spec_from_blueprint(BLUEPRINT, small_session.n_neurons, np.random.default_rng(1))
    data = prepare(small_session, small_split, spec)
    settings = FitSettings(epochs=3, batch_size=1)  # 3 x |D_T| steps > CALL_STEPS
    assert 3 * len(data.y_train) > CALL_STEPS
    a = fit(spec, data.x_train, data.y_train, settings, seed=3)
    b = fit(spec, data.x_train, data.y_train, settings, seed=3,
            progress=lambda done, loss: None)  # cut at the epoch boundary as well
    for (_, la), (_, lb) in zip(a.weighted_layers(), b.weighted_layers()):
        np.testing.assert_allclose(la.kernel, lb.kernel, rtol=1e-5, atol=1e-6)


def test_tensorflow_retrace_notice_is_dropped_and_other_warnings_kept(caplog):
    """Also when TensorFlow was imported before `import_tensorflow` (by a benchmark's
    LiteRT/Keras reference: the filter used to be installed only on the first import)."""
    import logging

    import tensorflow  # noqa: F401  (imported first, not through import_tensorflow)

    from neurogrs.pruning.tf_quiet import RetraceNotice, import_tensorflow

    log = logging.getLogger("tensorflow")
    for f in [f for f in log.filters if isinstance(f, RetraceNotice)]:
        log.removeFilter(f)
    import_tensorflow()
    import_tensorflow()
    assert sum(isinstance(f, RetraceNotice) for f in log.filters) == 1
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        log.warning("5 out of the last 5 calls to <function _train> triggered tf.function "
                    "retracing. Tracing is expensive")
        log.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
