"""The C cost of temporal context (neurogrs/bench/temporal_cost.py): every variant built,
timed in C, and checked against the numpy reference over the same stream."""
from __future__ import annotations

import pytest

from neurogrs.bench.temporal_cost import measure, variants


def test_variants_are_nn1_with_and_without_state():
    v = variants(20)
    assert not v["nn1"].stateful and not v["nn1 on N x 4 inputs, no traces"].stateful
    assert all(s.stateful for k, s in v.items() if "traces m" in k or "filter" in k)
    assert v["nn1 + traces m=3"].shapes()[1] == (80,)
    zoo = v["zoo nn2_traces_filter"]  # as shipped: one trace, input dropout, filter
    assert zoo.stateful and zoo.shapes()[1] == (40,) and type(zoo.layers[1]).__name__ == "Dropout"


@pytest.mark.timeout(300)
def test_measure_times_every_variant_and_checks_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROGRS_CACHE", str(tmp_path))
    rows = measure(n=20, frames=50, rounds=1)
    assert [r["variant"] for r in rows] == list(variants(20))
    for r in rows:
        assert r["max_abs_diff"] <= 1e-5 and r["median_us"] > 0
    by = {r["variant"]: r for r in rows}
    assert by["nn1 + traces m=3"]["state_bytes"] == 4 * (1 + 20 * 3)
    assert by["nn1"]["state_bytes"] == 0
