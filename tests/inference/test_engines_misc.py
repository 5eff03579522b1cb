"""Engine behaviour beyond the conformance suite: artifacts refused, caches, no
TensorFlow, warm-up, random architectures (hypothesis), the bench's smoke run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_models import sparsify, zoo
from neurogrs.artifact import save_artifact
from neurogrs.errors import ArtifactError, EngineError
from neurogrs.inference import load_engine
from neurogrs.inference.c_engine import CEngine
from neurogrs.spec import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ModelSpec, Preprocessing, forward

TOL = 1e-5


@pytest.fixture(scope="module")
def nn2_artifact(tmp_path_factory):
    return save_artifact(zoo("nn2", 17, 21), tmp_path_factory.mktemp("nn2"))


@pytest.mark.parametrize("engine", ["numpy", "numba", "c"])
def test_tampered_weights_refused(engine, tmp_path):
    path = save_artifact(zoo("nn2", 9, 22), tmp_path / "a")
    raw = bytearray((path / "weights.npz").read_bytes())
    raw[-40] ^= 0xFF
    (path / "weights.npz").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError):
        load_engine(path, engine)


def test_tampered_hash_refused(tmp_path):
    path = save_artifact(zoo("nn2", 9, 23), tmp_path / "a")
    doc = json.loads((path / "model.json").read_text())
    doc["hash"] = "0" * 64
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError):
        load_engine(path, "c")


def test_unknown_engine(nn2_artifact):
    with pytest.raises(EngineError, match="unknown engine"):
        load_engine(nn2_artifact, "tflite")


def test_no_tensorflow_in_inference(nn2_artifact, engine_cache):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from neurogrs.inference import load_engine
        import neurogrs.inference.numba_engine, neurogrs.inference.c_engine
        import neurogrs.codegen
        for name in ("numpy", "numba", "c"):
            e = load_engine({str(nn2_artifact)!r}, name)
            e.predict(np.zeros(e.n_inputs, np.float32))
            e.predict_batch(np.zeros((3, e.n_inputs), np.float32))
        bad = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")]
        print("LOADED:" + ",".join(bad))
    """)
    env = {**os.environ, "NEUROGRS_CACHE": str(engine_cache)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "LOADED:\n" in res.stdout or res.stdout.strip() == "LOADED:", res.stdout


def test_numba_compiled_in_constructor(nn2_artifact):
    eng = load_engine(nn2_artifact, "numba")
    assert eng._one.signatures and eng._many.signatures  # compiled before any live frame
    n_sigs = len(eng._one.signatures)
    eng.predict(np.ones(eng.n_inputs, np.float32))
    assert len(eng._one.signatures) == n_sigs  # the first live frame compiled nothing


def test_c_engine_cache_reused_and_keyed(tmp_path):
    spec = zoo("nn2", 13, 24)
    h = spec.content_hash()
    a = CEngine(spec, h, cache_dir=tmp_path)
    mtime = a.library_path.stat().st_mtime_ns
    b = CEngine(spec, h, cache_dir=tmp_path)
    assert b.library_path == a.library_path and b.library_path.stat().st_mtime_ns == mtime
    c = CEngine(spec, h, cache_dir=tmp_path, sparse="sparse")
    assert c.library_path != a.library_path  # options are part of the key
    assert h[:16] in a.library_path.parent.name


def test_c_engine_uses_neurogrs_cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROGRS_CACHE", str(tmp_path / "nc"))
    spec = zoo("nn2", 5, 25)
    eng = CEngine(spec, spec.content_hash())
    assert str(eng.library_path).startswith(str(tmp_path / "nc" / "c"))


def test_c_engine_refuses_library_of_another_model(tmp_path):
    from neurogrs.inference.c_engine import build_cached

    s1, s2 = zoo("nn2", 7, 26), zoo("nn2", 7, 27)
    lib1 = build_cached(s1, s1.content_hash(), cache_dir=tmp_path / "a")
    lib2 = build_cached(s2, s2.content_hash(), cache_dir=tmp_path / "b")  # built, never loaded
    tmp = lib2.with_suffix(".swap")
    tmp.write_bytes(lib1.read_bytes())
    os.replace(tmp, lib2)  # a swapped cache entry
    with pytest.raises(EngineError, match="built for model"):
        CEngine(s2, s2.content_hash(), cache_dir=tmp_path / "b")


def test_c_ctypes_binding_agrees(tmp_path):
    spec = zoo("cnn2", 20, 28)
    fast = CEngine(spec, spec.content_hash(), cache_dir=tmp_path)
    slow = CEngine(spec, spec.content_hash(), cache_dir=tmp_path, binding="ctypes")
    assert slow.binding == "ctypes"
    x = np.random.default_rng(0).normal(size=(5, 20)).astype(np.float32)
    for f in x:
        np.testing.assert_array_equal(fast.predict(f), slow.predict(f))
    with pytest.raises(EngineError):
        slow.predict(np.zeros(19, np.float32))


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_c_forced_modes_agree(mode, tmp_path):
    spec = sparsify(zoo("cnn1", 20, 29), 0.7, 3)
    eng = CEngine(spec, spec.content_hash(), sparse=mode, cache_dir=tmp_path)
    x = np.random.default_rng(1).normal(size=(20, 20)).astype(np.float32)
    assert np.max(np.abs(eng.predict_batch(x) - forward(spec, x))) <= TOL


def test_c_bench_in_c(tmp_path):
    spec = zoo("nn2", 11, 30)
    eng = CEngine(spec, spec.content_hash(), cache_dir=tmp_path)
    ns = eng.bench_in_c(np.zeros((50, 11), np.float32))
    assert ns.shape == (50,) and np.all(ns > 0) and np.all(np.isfinite(ns))


# ------------------------------------------------------------ random architectures
@st.composite
def architectures(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cnn = draw(st.booleans())
    if cnn:
        grid = draw(st.integers(3, 6))
        n = draw(st.integers((grid - 1) ** 2 + 1, grid * grid))
        index = np.full(grid * grid, -1, np.int32)
        index[rng.permutation(grid * grid)[:n]] = rng.permutation(n)
        pre = Preprocessing(n, mean=rng.normal(0, 1, n), scale=rng.uniform(0.2, 2, n),
                            index=index, grid=grid)
        filters = draw(st.integers(1, 9))
        kh = draw(st.integers(1, 2))
        layers = [Conv2D(rng.normal(0, 0.5, (kh, kh, 1, filters)), rng.normal(0, 0.1, filters),
                         activation="relu")]
        side = grid - kh + 1
        if side >= 2 and draw(st.booleans()):
            layers.append(MaxPool2D((2, 2), (1, 1)))
            side -= 1
        layers.append(Flatten())
        width = side * side * filters
    else:
        n = draw(st.integers(1, 40))
        pre = Preprocessing(n) if draw(st.booleans()) else Preprocessing(
            n, mean=rng.normal(0, 1, n), scale=rng.uniform(0.2, 2, n))
        layers, width = [], n
    for _ in range(draw(st.integers(0, 3))):
        units = draw(st.integers(1, 37))
        k = rng.normal(0, 0.4, (width, units))
        dead = rng.random(units) < draw(st.floats(0, 0.5))  # zeroed units
        k[:, dead] = 0.0
        if draw(st.booleans()):  # TQ-style sparsity
            k[np.abs(k) < np.quantile(np.abs(k), 0.7)] = 0.0
        layers.append(Dense(k, rng.normal(0, 0.1, units) * ~dead,
                            draw(st.sampled_from(["relu", "linear"]))))
        if draw(st.booleans()):
            layers.append(Dropout(0.3))
        width = units
    n_out = draw(st.integers(2, 4))
    layers.append(Dense(rng.normal(0, 0.4, (width, n_out)), rng.normal(0, 0.1, n_out), "softmax"))
    return ModelSpec(pre, tuple(layers), tuple(str(i) for i in range(n_out)), name="random")


_KERAS = None


def _keras_or_none():
    global _KERAS
    if _KERAS is None:
        try:
            from neurogrs.pruning import keras_adapter
            _KERAS = keras_adapter
        except Exception:  # pragma: no cover - no TensorFlow in this environment
            _KERAS = False
    return _KERAS or None


@given(spec=architectures(), sparse=st.sampled_from(["auto", "sparse", "dense"]))
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
def test_random_architectures_agree(spec, sparse, tmp_path):
    x = np.random.default_rng(0).normal(size=(16, spec.n_inputs)).astype(np.float32)
    ref = forward(spec, x)
    h = spec.content_hash()
    from neurogrs.inference.numba_engine import NumbaEngine

    for eng in (CEngine(spec, h, sparse=sparse, cache_dir=tmp_path / "c"),
                NumbaEngine(spec, h, cache_dir=tmp_path / "numba")):
        assert np.max(np.abs(eng.predict_batch(x) - ref)) <= TOL
        assert np.max(np.abs(eng.predict(x[1]) - ref[1])) <= TOL
    adapter = _keras_or_none()
    if adapter is not None:
        k = np.asarray(adapter.to_keras(spec)(spec.preprocessing.apply(x), training=False))
        assert np.max(np.abs(k - ref)) <= TOL


# ------------------------------------------------------------------- bench smoke
def test_bench_smoke(nn2_artifact):
    from neurogrs.artifact import load_artifact
    from neurogrs.bench.inference import InferenceBenchSettings, format_table, run_inference_bench

    art = load_artifact(nn2_artifact)
    res = run_inference_bench(art.spec, art.hash, InferenceBenchSettings(frames=200, peers=False))
    paths = [r["path"] for r in res["rows"]]
    assert paths == ["numpy", "numba", "c", "c (in C)"]
    assert all(r["median_us"] > 0 and r["p99_us"] >= r["median_us"] for r in res["rows"])
    assert all(r["max_abs_diff"] is None or r["max_abs_diff"] <= TOL for r in res["rows"])
    assert res["flops"] == art.spec.count_flops()
    json.dumps(res)
    assert "c (in C)" in format_table(res)


def test_cli_bench_json(nn2_artifact, capsys):
    from neurogrs.cli import main

    assert main(["bench", "inference", str(nn2_artifact), "--frames", "100", "--no-peers",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in res["rows"]] == ["numpy", "numba", "c", "c (in C)"]


@pytest.mark.parametrize("engine", ["numpy", "numba", "c"])
def test_read_only_frames_accepted(engine, nn2_artifact):
    """The fast paths take only writable C-contiguous float32 arrays; a read-only frame or
    batch goes through the checked path and gives the same answer."""
    eng = load_engine(nn2_artifact, engine)
    x = np.random.default_rng(3).normal(size=(4, eng.n_inputs)).astype(np.float32)
    ro = x.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(eng.predict(ro[1]), eng.predict(x[1]))
    np.testing.assert_array_equal(eng.predict_batch(ro), eng.predict_batch(x))


def test_c_kernel_set_cap(tmp_path):
    """kernels= caps the set the library may pick; every cap agrees with numpy."""
    spec = zoo("cnn1", 20, 22)
    x = np.random.default_rng(4).normal(size=(8, spec.n_inputs)).astype(np.float32)
    ref = forward(spec, x)
    got = {}
    for cap in ("auto", "vector4", "plain"):
        eng = CEngine(spec, spec.content_hash(), kernels=cap, cache_dir=tmp_path / "c")
        got[cap] = eng.kernels
        assert np.max(np.abs(eng.predict_batch(x) - ref)) <= TOL
    assert got["vector4"] == "vector4" and got["plain"] == "plain"
    assert got["auto"] in ("avx512f", "avx2+fma", "vector4")
    with pytest.raises(EngineError):
        CEngine(spec, spec.content_hash(), kernels="avx9000", cache_dir=tmp_path / "c")


def test_bench_gap_idles_between_calls_outside_the_timing():
    import time as _time

    from neurogrs.errors import ConfigError
    from neurogrs.bench.inference import InferenceBenchSettings, time_calls

    frames = np.zeros((5, 3), np.float32)
    t0 = _time.perf_counter()
    ns = time_calls(lambda f: None, frames, gap_s=0.01)
    assert _time.perf_counter() - t0 >= 0.05
    assert ns.shape == (5,) and float(ns.max()) < 5e6  # the sleeps are not in the timings
    with pytest.raises(ConfigError, match="gap_ms"):
        InferenceBenchSettings(gap_ms=-1)
