"""Golden files: what the generator writes for one tiny model, checked in so that review
shows every change of the generated C. Refresh on purpose only:

    NEUROGRS_UPDATE_GOLDEN=1 pytest tests/codegen/test_golden.py
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neurogrs.codegen import CodegenSettings, generate_sources
from neurogrs.spec import Conv2D, Dense, Flatten, MaxPool2D, ModelSpec, Preprocessing

GOLDEN = Path(__file__).parent / "golden"
FILES = ("decoder.h", "decoder.c")


def golden_spec() -> ModelSpec:
    """A 6-neuron CNN-and-dense model, weights rounded so the file stays short and exact."""
    rng = np.random.default_rng(2024)
    pre = Preprocessing(6, mean=np.round(rng.normal(0, 1, 6), 2),
                        scale=np.round(rng.uniform(0.5, 2, 6), 2),
                        index=np.array([0, 2, 5, -1, 1, 3, 4, -1, -1], np.int32), grid=3)
    conv = Conv2D(np.round(rng.normal(0, 0.5, (2, 2, 1, 3)), 3), np.round(rng.normal(0, 0.1, 3), 3),
                  activation="relu")
    k2 = np.round(rng.normal(0, 0.5, (3, 5)), 3)
    k2[np.abs(k2) < 0.3] = 0.0  # sparse enough for the zero-skipping code
    return ModelSpec(pre, (conv, MaxPool2D((2, 2), (1, 1)), Flatten(),
                           Dense(k2, np.round(rng.normal(0, 0.1, 5), 3), "relu"),
                           Dense(np.round(rng.normal(0, 0.5, (5, 2)), 3), np.zeros(2), "softmax")),
                     ("rest", "run"), name="golden")


def test_generator_output_matches_golden():
    files, _ = generate_sources(golden_spec(), options=CodegenSettings(prefix="golden",
                                                                      crossover=0.5))
    if os.environ.get("NEUROGRS_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        for name in FILES:
            (GOLDEN / name).write_text(files[name])
    for name in FILES:
        expected = (GOLDEN / name).read_text()
        assert files[name] == expected, (
            f"generated {name} differs from tests/codegen/golden/{name}; if the change is "
            f"intended, refresh with NEUROGRS_UPDATE_GOLDEN=1 and review the diff")
