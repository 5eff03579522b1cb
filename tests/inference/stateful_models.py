"""Stateful (temporal-context) models the engine conformance suite runs on: LeakyTraces in
front of a Dense network, LeakyTraces as channels of a CNN image, a ForwardFilter at the
end, both together, and a TQ-sparse Dense after the traces (the C generator's
zero-skipping path). Decays and transitions are drawn so the state matters: traces with
time constants of 2 to 20 frames, a sticky transition matrix."""
from __future__ import annotations

import numpy as np

from engine_models import with_session_preprocessing, zoo
from neurogrs.layers_temporal import ForwardFilter, LeakyTraces, decays_from_taus
from neurogrs.spec import Conv2D, Dense, ModelSpec

TAUS = {2: (3.0, 20.0), 3: (2.0, 7.0, 25.0)}


def traces_layer(m: int) -> LeakyTraces:
    return LeakyTraces(decays_from_taus(TAUS[m]))


def sticky_filter(k: int = 2, stay: float = 0.9, seed: int = 0) -> ForwardFilter:
    rng = np.random.default_rng(seed)
    t = np.full((k, k), (1 - stay) / (k - 1))
    np.fill_diagonal(t, stay)
    prior = rng.uniform(0.5, 1.5, k)
    return ForwardFilter(t.astype(np.float32), (prior / prior.sum()).astype(np.float32))


def dense_traces(n: int, m: int, seed: int, traces: np.ndarray | None = None,
                 filt: bool = False) -> ModelSpec:
    """nn1 on n neurons x (1 + m) inputs (frame and its traces), optional filter at the end."""
    base = zoo("nn1", n * (1 + m), seed)
    layers = (traces_layer(m), *base.layers) + ((sticky_filter(2, seed=seed),) if filt else ())
    from neurogrs.spec import Preprocessing

    spec = ModelSpec(Preprocessing(n), layers, base.label_names,
                     name=f"nn1_traces{m}_{n}" + ("_filter" if filt else ""))
    return with_session_preprocessing(spec, traces) if traces is not None else spec


def cnn_traces(n: int, m: int, seed: int) -> ModelSpec:
    """cnn1 whose first convolution reads the frame and its m traces as 1 + m channels."""
    base = zoo("cnn1", n, seed)
    conv = base.layers[0]
    rng = np.random.default_rng(seed)
    kh, kw, _, cout = conv.kernel.shape
    kernel = rng.normal(0, 0.4, (kh, kw, 1 + m, cout)).astype(np.float32)
    layers = (traces_layer(m), Conv2D(kernel, conv.bias, conv.strides, conv.activation),
              *base.layers[1:])
    return ModelSpec(base.preprocessing, layers, base.label_names, name=f"cnn1_traces{m}_{n}")


def filter_only(n: int, seed: int) -> ModelSpec:
    base = zoo("nn1", n, seed)
    return ModelSpec(base.preprocessing, (*base.layers, sticky_filter(2, 0.95, seed)),
                     base.label_names, name=f"nn1_filter_{n}")


def sparse_after_traces(spec: ModelSpec, zero_fraction: float = 0.96) -> ModelSpec:
    """TQ-style on the Dense right after the traces: weights below the zero_fraction
    quantile of |w| set to 0, the rest rounded to 3 decimals (sparse enough for the C
    generator's zero-skipping code at its default crossover)."""
    dense = spec.layers[1]
    k = dense.kernel.copy()
    k[np.abs(k) < np.quantile(np.abs(k), zero_fraction)] = 0.0
    layers = list(spec.layers)
    layers[1] = Dense(np.round(k, 3), dense.bias, dense.activation)
    return ModelSpec(spec.preprocessing, layers, spec.label_names, name=spec.name + "_sparse")


def stateful_models(traces: np.ndarray) -> dict[str, ModelSpec]:
    n = traces.shape[1]
    return {
        "traces2_nn1_31_session": dense_traces(n, 2, 21, traces),
        "traces3_nn1_273": dense_traces(273, 3, 22),
        "traces2_cnn1_31": cnn_traces(n, 2, 23),
        "filter_nn1_273": filter_only(273, 24),
        "traces2_filter_nn1_31_session": dense_traces(n, 2, 25, traces, filt=True),
        "traces3_nn1_273_sparse": sparse_after_traces(dense_traces(273, 3, 26)),
    }
