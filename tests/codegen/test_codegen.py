"""The C generator: strict compilation, harness == ctypes, names are data, status table,
float literals round-trip, compiler errors translated."""
from __future__ import annotations

import ctypes
import os
import re
import subprocess
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurogrs.codegen import (
    CodegenSettings,
    CompileSettings,
    compile_harness,
    compile_library,
    generate_sources,
    write_sources,
)
from neurogrs.codegen.generator import STATUS
from neurogrs.codegen.names import c_comment, c_float, c_identifier, c_string
from neurogrs.errors import CompilerError, ConfigError
from neurogrs.spec import Activation, Dense, ModelSpec, Preprocessing, forward
from neurogrs.zoo import init_spec

STRICT = CompileSettings(werror=True)


def zoo(name, n, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return init_spec(name, n, np.random.default_rng(seed), random_bias=True)


def tiny(name="tiny"):
    rng = np.random.default_rng(3)
    pre = Preprocessing(5, mean=rng.normal(0, 1, 5), scale=rng.uniform(0.5, 2, 5))
    return ModelSpec(pre, (Dense(rng.normal(0, 1, (5, 3)), rng.normal(0, 0.1, 3), "relu"),
                           Activation("relu"), Dense(rng.normal(0, 1, (3, 2)), np.zeros(2),
                                                     "softmax")), ("left", "right"), name=name)


def run_harness(exe, frames, via_stdin=False, tmp_path=None):
    if via_stdin:
        res = subprocess.run([str(exe), "-"], input=frames.tobytes(), capture_output=True,
                             timeout=60, check=True)
    else:
        f = tmp_path / "frames.f32"
        f.write_bytes(frames.tobytes())
        res = subprocess.run([str(exe), str(f)], capture_output=True, timeout=60, check=True)
    lines = res.stdout.decode().splitlines()
    return np.array([[np.float32(v) for v in line.split()] for line in lines], np.float32)


CASES = {
    "nn1_273_dense": (lambda: zoo("nn1", 273), "dense"),
    "nn1_273_sparse": (lambda: zoo("nn1", 273), "sparse"),
    "nn2_10": (lambda: zoo("nn2", 10), "auto"),
    "cnn1_20_dense": (lambda: zoo("cnn1", 20), "dense"),
    "cnn2_20_sparse": (lambda: zoo("cnn2", 20), "sparse"),
    "tiny": (tiny, "auto"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("vectors", [True, False], ids=["vectors", "plain_c99"])
def test_strict_compile_and_harness_matches_reference(case, vectors, tmp_path):
    build, sparse = CASES[case]
    spec = build()
    write_sources(spec, tmp_path, options=CodegenSettings(sparse=sparse))
    opts = STRICT if vectors else CompileSettings(werror=True, extra_flags=("-DNEUROGRS_NO_VECTORS",))
    compile_library(tmp_path, opts)
    exe = compile_harness(tmp_path, opts)
    x = np.random.default_rng(1).normal(size=(9, spec.n_inputs)).astype(np.float32)
    got = run_harness(exe, x, tmp_path=tmp_path)
    assert got.shape == (9, spec.n_outputs)
    assert np.max(np.abs(got - forward(spec, x))) <= 1e-5


def test_harness_prints_what_ctypes_returns(tmp_path):
    """Same code, same flags: the harness's %.9g output equals the ctypes path bit for bit."""
    from neurogrs.inference.c_engine import CEngine

    spec = zoo("cnn2", 20, seed=4)
    eng = CEngine(spec, spec.content_hash(), cache_dir=tmp_path / "cache")
    write_sources(spec, tmp_path / "src", spec.content_hash())
    exe = compile_harness(tmp_path / "src")
    x = np.random.default_rng(2).normal(size=(25, spec.n_inputs)).astype(np.float32)
    via_file = run_harness(exe, x, tmp_path=tmp_path)
    via_stdin = run_harness(exe, x, via_stdin=True)
    np.testing.assert_array_equal(via_file, eng.predict_batch(x))
    np.testing.assert_array_equal(via_stdin, eng.predict_batch(x))
    np.testing.assert_array_equal(via_file[3], eng.predict(x[3]))


def test_harness_rejects_partial_frame(tmp_path):
    spec = tiny()
    write_sources(spec, tmp_path)
    exe = compile_harness(tmp_path)
    res = subprocess.run([str(exe), "-"], input=np.zeros(7, np.float32).tobytes(),
                         capture_output=True, timeout=30)
    assert res.returncode == 1 and b"partial frame" in res.stderr


def _lib(tmp_path, spec, prefix="decoder"):
    write_sources(spec, tmp_path, options=CodegenSettings(prefix=prefix))
    return ctypes.CDLL(str(compile_library(tmp_path, STRICT)))


def test_status_codes_and_strings(tmp_path):
    lib = _lib(tmp_path, tiny())
    lib.decoder_status_string.restype = ctypes.c_char_p
    lib.decoder_status_string.argtypes = [ctypes.c_int]
    for code, (_, text) in enumerate(STATUS):
        assert lib.decoder_status_string(code).decode() == text
    assert lib.decoder_status_string(len(STATUS)).decode() == "unknown status"
    assert lib.decoder_status_string(-1).decode() == "unknown status"
    lib.decoder_predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.decoder_predict_batch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    buf = np.zeros(10, np.float32)
    assert lib.decoder_predict(None, buf.ctypes.data) == 1  # ERR_NULL
    assert lib.decoder_predict(buf.ctypes.data, None) == 1
    assert lib.decoder_predict_batch(buf.ctypes.data, buf.ctypes.data, -1) == 2  # ERR_COUNT
    assert lib.decoder_predict_batch(buf.ctypes.data, buf.ctypes.data, 0) == 0


def test_header_constants_and_hash(tmp_path):
    spec = tiny()
    files, _ = generate_sources(spec, options=CodegenSettings(prefix="hpc1"))
    h = files["decoder.h"]
    assert "#define HPC1_N_INPUTS 5" in h and "#define HPC1_N_OUTPUTS 2" in h
    assert f'#define HPC1_MODEL_HASH "{spec.content_hash()}"' in h
    assert "#ifndef HPC1_DECODER_H" in h and 'extern "C"' in h
    assert "int hpc1_predict(const float *in, float *out);" in h
    assert "malloc" not in files["decoder.c"]
    lib = _lib(tmp_path, spec, prefix="hpc1")
    lib.hpc1_model_hash.restype = ctypes.c_char_p
    assert lib.hpc1_model_hash().decode() == spec.content_hash()


def test_sparse_auto_picks_by_density():
    spec = zoo("nn1", 40)
    k = spec.layers[0].kernel.copy()
    k[np.abs(k) < np.quantile(np.abs(k), 0.96)] = 0.0
    layers = (Dense(k, spec.layers[0].bias, "relu"),) + spec.layers[1:]
    sparse_spec = ModelSpec(spec.preprocessing, layers, spec.label_names)
    _, plan = generate_sources(sparse_spec)
    modes = {p.index: p.mode for p in plan if p.density is not None}
    # sparse code for the portable sets, dense kernels for AVX2 / AVX-512
    assert modes[0] == "split" and modes[1] == "dense"
    _, forced = generate_sources(sparse_spec, options=CodegenSettings(sparse="dense"))
    assert all(p.mode == "dense" for p in forced if p.density is not None)
    _, forced = generate_sources(sparse_spec, options=CodegenSettings(sparse="sparse"))
    assert all(p.mode == "sparse" for p in forced if p.density is not None)



def test_all_zero_layer_compiles(tmp_path):
    spec = zoo("nn2", 6)
    layers = (Dense(np.zeros((6, 32)), spec.layers[0].bias, "relu"),) + spec.layers[1:]
    z = ModelSpec(spec.preprocessing, layers, spec.label_names)
    write_sources(z, tmp_path, options=CodegenSettings(sparse="sparse"))
    exe = compile_harness(tmp_path, STRICT)
    x = np.ones((2, 6), np.float32)
    assert np.max(np.abs(run_harness(exe, x, tmp_path=tmp_path) - forward(z, x))) <= 1e-6


# ------------------------------------------------------------------ names are data
@pytest.mark.parametrize("bad", ["int", "static", "1abc", "a-b", "x); system(\"rm\"", "",
                                 "_Bool", "__x", "a__b", "main", "é", "a" * 41])
def test_bad_prefix_rejected(bad):
    with pytest.raises(ConfigError):
        c_identifier(bad)
    with pytest.raises(ConfigError):
        CodegenSettings(prefix=bad)


HOSTILE = 'evil */ #include <stdlib.h>\n"; system("rm -rf /"); /* ??/ \\ \u00e9'


def test_model_name_is_data(tmp_path):
    spec = tiny(name=HOSTILE)
    write_sources(spec, tmp_path)
    text = (tmp_path / "decoder.c").read_text() + (tmp_path / "decoder.h").read_text()
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments
    code = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', code)  # string literals
    assert "system" not in code and "stdlib" not in code and "evil" not in code
    (tmp_path / "name.c").write_text(
        '#include <stdio.h>\n#include "decoder.h"\n'
        'int main(void) { fputs(DECODER_MODEL_NAME, stdout); return 0; }\n')
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-o", "name", "name.c"],
                   cwd=tmp_path, check=True, timeout=60)
    compile_library(tmp_path, STRICT)
    out = subprocess.run([str(tmp_path / "name")], capture_output=True, timeout=30).stdout
    assert out.decode("utf-8") == HOSTILE


def test_comment_and_string_helpers():
    assert "*/" not in c_comment("a */ b /* c")
    assert "??" not in c_comment("what??/")
    lit = c_string('a"b\\c\n??/')
    assert lit.startswith('"') and lit.endswith('"')
    assert '"' not in lit[1:-1] and "\n" not in lit and "??" not in lit


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
@settings(max_examples=300, deadline=None)
def test_c_float_round_trips(v):
    s = c_float(v)
    assert s.endswith("f")
    assert np.float32(float(s[:-1])) == np.float32(v)


def test_c_float_is_a_float_literal():
    assert c_float(1.0) == "1.0f" and c_float(-0.0) == "-0.0f" and c_float(1e-30).endswith("e-30f")


# ------------------------------------------------------------------ compiler errors
def test_missing_compiler_names_what_to_install(monkeypatch, tmp_path):
    write_sources(tiny(), tmp_path)
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(CompilerError, match="apt-get install gcc"):
        compile_library(tmp_path)


def test_missing_compiler_from_c_engine(monkeypatch, tmp_path):
    from neurogrs.inference.c_engine import CEngine

    spec = tiny()
    with pytest.raises(CompilerError, match="install"):
        CEngine(spec, spec.content_hash(), cc=str(tmp_path / "no-such-cc"),
                cache_dir=tmp_path / "cache")


def test_compile_failure_is_a_compiler_error(tmp_path):
    write_sources(tiny(), tmp_path)
    (tmp_path / "decoder.c").write_text("this is not C\n")
    with pytest.raises(CompilerError, match="compiling failed"):
        compile_library(tmp_path)


def test_cli_codegen(tmp_path, capsys):
    from neurogrs.artifact import save_artifact
    from neurogrs.cli import main

    art = save_artifact(tiny(), tmp_path / "art")
    assert main(["codegen", str(art), "--out", str(tmp_path / "out"), "--prefix", "dec1"]) == 0
    for name in ("decoder.h", "decoder.c", "main.c", "Makefile", "libdecoder.so", "decoder_main"):
        assert (tmp_path / "out" / name).is_file()
    assert "dec1_predict" in (tmp_path / "out" / "decoder.h").read_text()
    assert main(["codegen", str(art), "--out", str(tmp_path / "x"), "--prefix", "int"]) == 2
    assert "reserved word" in capsys.readouterr().err


def test_makefile_builds(tmp_path):
    write_sources(tiny(), tmp_path)
    res = subprocess.run(["make", "-s"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    if res.returncode != 0 and "not found" in res.stderr:
        pytest.skip("make is not installed")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "libdecoder.so").is_file() and (tmp_path / "decoder_main").is_file()


# ------------------------------------------------------------------ kernel sets
def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _grid_pre(rng, grid: int, n: int) -> Preprocessing:
    index = np.full(grid * grid, -1, np.int32)
    index[rng.permutation(grid * grid)[:n]] = rng.permutation(n)
    return Preprocessing(n, mean=rng.normal(0, 1, n), scale=rng.uniform(0.5, 2, n),
                         index=index, grid=grid)


def _kernel_models() -> dict[str, ModelSpec]:
    """Shapes that exercise every branch of the SIMD emitters: channel counts that are not
    a multiple of 8 or 16 (masked loads and stores), several channel blocks (c_out 37),
    conv outputs wider than one register block (row-wrapping pixel blocks and a
    remainder), one-row blocks, fused pools with strides 1 and 2, linear convs, a pool
    after a linear conv, unfused pools, wide Dense layers."""
    from neurogrs.spec import Conv2D, Flatten, MaxPool2D

    rng = np.random.default_rng(21)

    def conv(kh, cin, cout, act="relu", strides=(1, 1)):
        return Conv2D(rng.normal(0, 0.4, (kh, kh, cin, cout)), rng.normal(0, 0.1, cout),
                      strides, act)

    def dense(n_in, n_out, act="relu"):
        return Dense(rng.normal(0, 0.3, (n_in, n_out)), rng.normal(0, 0.1, n_out), act)

    out = {}
    # 17x17 -> conv 2x2 (16x16x37) -> pool 2/2 (8x8x37) -> conv 3x3 (6x6x21) -> dense
    out["wide_channels"] = ModelSpec(
        _grid_pre(rng, 17, 273),
        (conv(2, 1, 37), MaxPool2D((2, 2), (2, 2)), conv(3, 37, 21), Flatten(),
         dense(6 * 6 * 21, 70), dense(70, 3, "softmax")), ("a", "b", "c"), name="k1")
    # linear conv with stride 2 (wo = 7 > AVX2 block) + overlapping pool + unfused pool
    out["strided_linear"] = ModelSpec(
        _grid_pre(rng, 15, 200),
        (conv(2, 1, 5, "linear", (2, 2)), MaxPool2D((2, 2), (1, 1)), conv(1, 5, 9),
         MaxPool2D((3, 3), (1, 1)), Flatten(), dense(4 * 4 * 9, 2, "softmax")),
        ("a", "b"), name="k2")
    # no fusion (conv -> conv), 13-wide rows (flat blocks in both sets), 1 filter
    out["flat_blocks"] = ModelSpec(
        _grid_pre(rng, 14, 190),
        (conv(2, 1, 1), conv(1, 1, 17), Flatten(), dense(13 * 13 * 17, 9, "linear"),
         dense(9, 2, "softmax")), ("a", "b"), name="k3")
    return out


KERNEL_SETS = {
    "auto": (),
    "avx2": ("-DNEUROGRS_NO_AVX512",),
    "vector4": ("-DNEUROGRS_NO_AVX512", "-DNEUROGRS_NO_AVX2"),
    "plain": ("-DNEUROGRS_NO_VECTORS",),
}


@pytest.mark.parametrize("kset", sorted(KERNEL_SETS))
@pytest.mark.parametrize("model", ["wide_channels", "strided_linear", "flat_blocks"])
def test_kernel_sets_agree(model, kset, tmp_path):
    """Each kernel set (forced at build time) compiles strictly, reports itself, and agrees
    with the numpy reference within 1e-5 on random frames."""
    spec = _kernel_models()[model]
    flags = KERNEL_SETS[kset]
    cpu = _cpu_flags()
    expected = {"auto": None, "avx2": "avx2+fma", "vector4": "vector4", "plain": "plain"}[kset]
    if kset == "avx2" and not {"avx2", "fma"} <= cpu:
        pytest.skip("this CPU has no AVX2+FMA")
    write_sources(spec, tmp_path, options=CodegenSettings(sparse="dense"))
    lib_path = compile_library(tmp_path, CompileSettings(werror=True, extra_flags=flags))
    lib = ctypes.CDLL(str(lib_path))
    lib.decoder_kernels.restype = ctypes.c_char_p
    got_set = lib.decoder_kernels().decode()
    if expected is not None:
        assert got_set == expected
    elif "avx512f" in cpu:
        assert got_set == "avx512f"
    f32 = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
    lib.decoder_predict_batch.argtypes = [f32, f32, ctypes.c_int]
    x = np.random.default_rng(5).normal(size=(20, spec.n_inputs)).astype(np.float32)
    out = np.full((20, spec.n_outputs), np.nan, np.float32)
    assert lib.decoder_predict_batch(x, out, 20) == 0
    assert np.max(np.abs(out - forward(spec, x))) <= 1e-5


@pytest.mark.parametrize("kset", sorted(KERNEL_SETS))
def test_split_layer_in_every_kernel_set(kset, tmp_path):
    """A layer below the crossover compiles strictly and agrees with numpy in every set."""
    spec = zoo("nn1", 40)
    k = spec.layers[0].kernel.copy()
    k[np.abs(k) < np.quantile(np.abs(k), 0.96)] = 0.0
    spec = ModelSpec(spec.preprocessing, (Dense(k, spec.layers[0].bias, "relu"),)
                     + spec.layers[1:], spec.label_names)
    if kset == "avx2" and not {"avx2", "fma"} <= _cpu_flags():
        pytest.skip("this CPU has no AVX2+FMA")
    write_sources(spec, tmp_path)
    lib = ctypes.CDLL(str(compile_library(
        tmp_path, CompileSettings(werror=True, extra_flags=KERNEL_SETS[kset]))))
    f32 = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
    lib.decoder_predict_batch.argtypes = [f32, f32, ctypes.c_int]
    x = np.random.default_rng(6).normal(size=(12, 40)).astype(np.float32)
    out = np.empty((12, spec.n_outputs), np.float32)
    assert lib.decoder_predict_batch(x, out, 12) == 0
    assert np.max(np.abs(out - forward(spec, x))) <= 1e-5
