"""The demo's engine timing runs a stateful (temporal-context) artifact as one stream."""
import numpy as np

from neurogrs.artifact import save_artifact
from neurogrs.bench.temporal_cost import variants
from neurogrs.demo.offline import time_engine


def test_time_engine_on_a_stateful_artifact(tmp_path):
    path = save_artifact(variants(10)["nn1 + traces m=2"], tmp_path / "art")
    frames = np.random.default_rng(0).normal(size=(30, 10)).astype(np.float32)
    row = time_engine(path, "numpy", frames, 80)
    assert row["frames"] == 80 and row["median_us"] > 0
