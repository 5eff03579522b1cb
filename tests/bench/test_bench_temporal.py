"""The temporal benchmark's measurement functions on a shrunken suite (1 epoch)."""
import numpy as np
import pytest

from neurogrs.bench import temporal as bt
from neurogrs.evaluate import evaluate_spec


@pytest.fixture
def trained(monkeypatch):
    """(session, spec) of every model the benchmark trains, in order."""
    out = []
    real_train = bt._train

    def spy(*args, **kwargs):
        result = real_train(*args, **kwargs)
        out.append((args[0], result.spec))
        return result

    monkeypatch.setattr(bt, "_train", spy)
    return out


def test_suite_sessions_share_neurons_within_a_mouse():
    suite = bt.suite_sessions(n_frames=300)
    assert list(suite) == ["M1", "M2", "M3"]
    for sessions in suite.values():
        assert len(sessions) == 3
        assert len({s.n_neurons for s in sessions}) == 1
        assert all(np.array_equal(s.positions, sessions[0].positions) for s in sessions)
        assert not np.array_equal(sessions[0].traces, sessions[1].traces)


def test_measure_suite_rows_and_table(trained):
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


def test_dropout_sweep_chooses_on_session_2_and_reports_session_3(trained):
    from neurogrs.layers_temporal import LeakyTraces
    from neurogrs.spec import Dropout

    rows = bt.dropout_sweep([0.0, 0.35], epochs=1, seeds=(0,), cores=("nn2",), n_frames=600)
    assert [(r["model"], r["input_dropout"]) for r in rows] == [
        ("nn2", 0.0), ("nn2", 0.35), ("nn2_traces", 0.0), ("nn2_traces", 0.35)]
    suite = bt.suite_sessions(n_frames=600)
    for i, row in enumerate(rows):
        specs = [spec for _, spec in trained[3 * i:3 * i + 3]]  # one per mouse
        first = specs[0].layers[1 if row["model"].endswith("_traces") else 0]
        assert isinstance(specs[0].layers[0], LeakyTraces) == row["model"].endswith("_traces")
        assert (isinstance(first, Dropout) and first.rate == 0.35) == (row["input_dropout"] > 0)
        s3 = np.mean([evaluate_spec(spec, sessions[2], None, None)["balanced_accuracy"]
                      for spec, sessions in zip(specs, suite.values())])
        assert row["s3"] == s3
    table = bt._dropout_table(rows)
    assert "| nn2_traces | 0.35 |" in table and "S3 (held out)" in table
