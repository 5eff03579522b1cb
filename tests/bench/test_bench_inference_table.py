"""`bench inference`'s table says what it measures: units and what each error compares to."""
import numpy as np

from neurogrs.bench.inference import _bench_keras, format_table


def _result():
    def row(path, frames, median, p99, diff, note=""):
        return {"path": path, "frames": frames, "median_us": median, "p99_us": p99,
                "max_abs_diff": diff, "note": note, "vs_litert": None}

    return {"model": "nn1", "hash": "ab" * 32, "n_inputs": 20, "structure": [32, 2],
            "flops": 1000, "effective_flops": 900, "params": 700, "nonzero_params": 690,
            "frames": 100, "gap_ms": 0.0, "c_batch_us_per_frame": 0.5,
            "rows": [row("numpy", 100, 27.0, 40.0, 2.4e-7),
                     row("c", 100, 1.4, 2.0, 3.0e-7),
                     row("c (in C)", 100, 0.5, 0.7, None),
                     row("keras model(x)", 20, 4942.0, 6000.0, 6.0e-8, "20 frames (eager)")]}


def test_error_column_names_its_reference_and_units_are_microseconds():
    table = format_table(_result())
    header = next(line for line in table.splitlines() if line.startswith("path"))
    assert "vs numpy" not in header  # the numpy row is not its own reference
    assert "max|d| vs ref" in header and "median us" in header
    assert "ref = numpy forward() of all frames in one batch" in table
    keras = next(line for line in table.splitlines() if line.startswith("keras"))
    assert "4942.00" in keras and "ms" not in keras


def test_keras_row_note_does_not_claim_milliseconds():
    xs = np.ones((5, 3), np.float32)
    row = _bench_keras(lambda x, training: x * 2.0, xs, xs * 2.0)
    assert row.frames == 5 and row.max_abs_diff == 0.0
    assert "ms" not in row.note and "per call" not in row.note


def test_stateful_model_is_timed_as_one_stream(tmp_path, monkeypatch):
    """A temporal-context model: every engine decodes the frames as one stream from a fresh
    state and matches forward() of the sequence; the peers (no state) are skipped."""
    from neurogrs.bench.inference import InferenceBenchSettings, run_inference_bench
    from neurogrs.bench.temporal_cost import variants

    monkeypatch.setenv("NEUROGRS_CACHE", str(tmp_path))
    spec = variants(12)["nn1 + traces m=3 + filter"]
    result = run_inference_bench(spec, spec.content_hash(),
                                 InferenceBenchSettings(frames=60, peers=True))
    rows = {r["path"]: r for r in result["rows"]}
    for path in ("numpy", "numba", "c"):
        assert rows[path]["max_abs_diff"] <= 1e-5
    assert rows["litert"]["note"] == "skipped: stateful model (temporal context)"
