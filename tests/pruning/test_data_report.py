import json
from dataclasses import replace

import numpy as np
import pytest

from neurogrs.errors import SessionError
from neurogrs.pruning.data import decision_metric, evaluate, prepare
from neurogrs.pruning.report import (
    chance_warning,
    model_values,
    reductions,
    selection_values,
    summary_table,
    write_report,
)
from neurogrs.pruning.selection import select
from neurogrs.session import Session
from neurogrs.splits import Split, SplitSettings, make_split


def test_parts_and_shapes(small_session, small_split, small_data):
    spec, data = small_data
    assert data.x_train.shape == (small_split.balanced.size, small_session.n_neurons)
    assert np.bincount(data.y_train).tolist() == [small_split.balanced.size // 2] * 2
    assert data.sizes()["val"] == small_split.val.size


def test_decision_metric_reads_validation_only(small_data):
    spec, data = small_data
    before = decision_metric(spec, data, "balanced_accuracy")
    scrambled = replace(data, test_frames=np.zeros_like(data.test_frames),
                        y_test=1 - data.y_test)
    assert decision_metric(spec, scrambled, "balanced_accuracy") == before
    assert evaluate(spec, scrambled)["test"] != evaluate(spec, data)["test"]


def test_session_too_small_for_the_split():
    rng = np.random.default_rng(0)
    tiny = Session(rng.random((60, 10)).astype(np.float32), np.arange(60) % 2)
    split = make_split(tiny.labels, SplitSettings(mode="shuffled"), np.random.default_rng(0))
    from neurogrs.zoo import init_spec

    with pytest.raises(SessionError, match="too small for the split.*at least 10"):
        prepare(tiny, split, init_spec("nn2", 10, np.random.default_rng(0)))


def test_training_part_with_one_class(small_session, small_split, small_data):
    spec, _ = small_data
    ones = small_split.balanced[small_session.labels[small_split.balanced] == 1]
    one_class = Split(small_split.train, small_split.val, small_split.test, ones)
    with pytest.raises(SessionError, match="single class"):
        prepare(small_session, one_class, spec)


def test_values_reductions_and_selection_never_see_test(small_data):
    spec, data = small_data
    v = model_values(spec, data, "balanced_accuracy")
    assert v["params"] == spec.count_params() and v["val"]["metric"] == v["val"]["balanced_accuracy"]
    half = {**v, "params": v["params"] // 2, "flops": v["flops"] // 2}
    red = reductions(half, v)
    assert 49 <= red["params_pct"] <= 51
    # two candidates: "good_test" has a far better test metric but a worse val metric
    better_val = {**v, "val": {**v["val"], "metric": 0.9}, "test": {**v["test"], "metric": 0.1}}
    good_test = {**v, "val": {**v["val"], "metric": 0.8}, "test": {**v["test"], "metric": 1.0}}
    cands = [selection_values("better_val", better_val, v), selection_values("good_test", good_test, v)]
    assert all("test" not in k for c in cands for k in c.values)
    assert select(cands).chosen.name == "better_val"


def test_chance_warning(small_data):
    spec, data = small_data
    v = model_values(spec, data, "balanced_accuracy")
    assert chance_warning("nn1", v) is None
    at_chance = {**v, "val": {**v["val"], "balanced_accuracy": 0.51}}
    assert "pruning it is meaningless" in chance_warning("nn1", at_chance)


def test_report_json_and_table(tmp_path, small_data):
    spec, data = small_data
    v = model_values(spec, data, "accuracy")
    v["val"]["metric"] = float("nan")  # JSON-safe
    report = {"partial": True, "settings": {"metric": "accuracy"}, "selection": None,
              "candidates": {"mlp": {"initial": v, "pruned": v,
                                     "reductions": {"pruned": reductions(v, v)}}}}
    path = write_report(report, tmp_path)
    doc = json.loads(path.read_text())
    assert doc["schema"] == "neurogrs.prune-report/1" and doc["partial"] is True
    assert doc["candidates"]["mlp"]["initial"]["val"]["metric"] is None
    table = summary_table({**report, "candidates": {"mlp": {"initial": model_values(spec, data, "accuracy")}}})
    assert "mlp" in table and f"{spec.count_params():,}" in table and "PARTIAL" in table
