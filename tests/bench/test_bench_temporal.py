"""The temporal benchmark's measurement functions on a shrunken suite (1 epoch)."""
import numpy as np

from neurogrs.bench import temporal as bt
from neurogrs.evaluate import evaluate_spec


def test_suite_sessions_share_neurons_within_a_mouse():
    suite = bt.suite_sessions(n_frames=300)
    assert list(suite) == ["M1", "M2", "M3"]
    for sessions in suite.values():
        assert len(sessions) == 3
        assert len({s.n_neurons for s in sessions}) == 1
        assert all(np.array_equal(s.positions, sessions[0].positions) for s in sessions)
        assert not np.array_equal(sessions[0].traces, sessions[1].traces)


def test_measure_suite_rows_and_table(monkeypatch):
    trained = []
    real_train = bt._train

    def spy(*args, **kwargs):
        result = real_train(*args, **kwargs)
        trained.append((args[0], result.spec))
        return result

    monkeypatch.setattr(bt, "_train", spy)
    rows = bt.measure_suite(["nn1", "nn2_traces"], epochs=1, seeds=(0,), n_frames=600)
    assert [(r["mouse"], r["model"]) for r in rows] == [
        (m, k) for m in ("M1", "M2", "M3") for k in ("nn1", "nn2_traces")]
    # session 2 is decoded with the model trained on session 1 of the same mouse
    suite = bt.suite_sessions(n_frames=600)
    for row, (session, spec) in zip(rows, trained):
        assert session.digest() == suite[row["mouse"]][0].digest()
        want = evaluate_spec(spec, suite[row["mouse"]][1], None, None)["balanced_accuracy"]
        assert row["s2"] == want
    table = bt._suite_table(rows)
    nn1 = np.mean([[r["s2"], r["s3"]] for r in rows if r["model"] == "nn1"])
    assert f"| nn1 | " in table and f"{nn1:.3f} | +0.000 |" in table


def test_c_cost_times_the_core_at_the_traces_width():
    rows = bt.core_c_cost(["nn2", "nn2_traces", "cnn2_traces"], n_neurons=50, frames=200,
                          rounds=1)
    assert [r["model"] for r in rows] == ["nn2", "nn2_traces"]  # no proxy for CNN + traces
    assert rows[0]["core_inputs"] == 50 and rows[1]["core_inputs"] == 100
    assert rows[1]["flops"] > rows[1]["core_flops"] and rows[1]["core_c_us"] > 0
