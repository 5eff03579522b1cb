"""`neurogrs bench inference`: per-frame latency of every engine and of the usual peers.

Everything runs in one process, one thread, on the same model and the same frames, one
frame per call, so the ratios are meaningful on a shared machine even when the absolute
numbers drift. Reported per path: median and p99 (microseconds per call) over the timed
frames, and the largest difference from the reference on those frames: numpy `forward()`
of all frames in one batch (the per-frame numpy engine is compared with it too).

Paths:
  numpy, numba, c      neurogrs engines, from Python (raw frame in, preprocessing included)
  c (in C)             the same C code timed inside C (clock_gettime around each call)
  keras model(x)       eager Keras call on a [1, ...] batch (fewer frames: milliseconds each)
  litert               ai-edge-litert Interpreter: set_tensor / invoke / get_tensor
  onnxruntime          tf2onnx conversion, InferenceSession.run with one thread

Peers receive frames already preprocessed (their time excludes normalisation and the CNN
rearrangement; ours includes it). Peers come from the `bench` extra
(`pip install 'neurogrs[bench]'`); a missing one is skipped with a message.

Only this module imports TensorFlow (for the peers, inside functions); the engines never do.
"""
from __future__ import annotations

import contextlib
import gc
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from neurogrs.settings import SettingsDict
from neurogrs.errors import ConfigError
from neurogrs.spec import ModelSpec, forward

__all__ = ["BenchRow", "InferenceBenchSettings", "time_calls", "run_inference_bench", "format_table"]


@dataclass(frozen=True)
class InferenceBenchSettings(SettingsDict):
    """How many frames each path gets, and the seed of the random frames."""

    frames: int = 10_000
    keras_frames: int = 200
    seed: int = 0
    peers: bool = True
    gap_ms: float = 0.0  # idle time between frames (a live session's cadence), not timed

    def __post_init__(self) -> None:
        if int(self.frames) < 10:
            raise ConfigError(f"frames={self.frames} must be >= 10")
        if int(self.keras_frames) < 1:
            raise ConfigError(f"keras_frames={self.keras_frames} must be >= 1")
        if not 0.0 <= float(self.gap_ms) <= 1000.0:
            raise ConfigError(f"gap_ms={self.gap_ms} must be in [0, 1000]")


@dataclass
class BenchRow:
    path: str
    frames: int
    median_us: float | None
    p99_us: float | None
    max_abs_diff: float | None = None
    note: str = ""


def time_calls(fn: Callable[[np.ndarray], object], frames: np.ndarray,
               gap_s: float = 0.0) -> np.ndarray:
    """Nanoseconds of fn(frame) for each frame, one call per frame (GC paused).

    gap_s > 0 sleeps that long before each call (outside the timed region), as frames of a
    live session arrive: caches go cold and the core may sleep between calls."""
    sleep = time.sleep
    ns = np.empty(len(frames), np.float64)
    clock = time.perf_counter_ns
    enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(len(frames)):
            f = frames[i]
            if gap_s:
                sleep(gap_s)
            t0 = clock()
            fn(f)
            ns[i] = clock() - t0
    finally:
        if enabled:
            gc.enable()
    return ns


def _row(path: str, ns: np.ndarray, diff: float | None = None, note: str = "") -> BenchRow:
    return BenchRow(path, int(ns.size), float(np.median(ns)) / 1e3,
                    float(np.percentile(ns, 99)) / 1e3, diff, note)


def _diff(outputs: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(outputs, np.float32) - ref)))


# ------------------------------------------------------------------------------ peers
def _keras_model(spec: ModelSpec):
    from neurogrs.pruning.tf_quiet import import_tensorflow

    tf = import_tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised: keep going, say nothing new
        pass
    from neurogrs.pruning.keras_adapter import to_keras

    return to_keras(spec)


def _bench_keras(model, xs: np.ndarray, ref: np.ndarray, gap_s: float = 0.0) -> BenchRow:
    outs = []

    def call(x):
        outs.append(model(x[None], training=False))

    ns = time_calls(call, xs, gap_s)
    got = np.concatenate([np.asarray(o) for o in outs])
    return _row("keras model(x)", ns, _diff(got, ref),
                f"{len(xs)} frames (eager calls are slow: fewer of them)")


def _bench_litert(model, xs: np.ndarray, ref: np.ndarray, gap_s: float = 0.0) -> BenchRow:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return BenchRow("litert", 0, None, None, None,
                        "skipped: ai-edge-litert not installed (pip install 'neurogrs[bench]')")
    import tensorflow as tf

    with contextlib.redirect_stdout(sys.stderr):  # the converter prints to stdout
        tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    it = Interpreter(model_content=tflite, num_threads=1)
    it.allocate_tensors()
    i_in = it.get_input_details()[0]["index"]
    i_out = it.get_output_details()[0]["index"]
    outs = np.empty((len(xs), ref.shape[1]), np.float32)
    k = [0]

    def call(x):
        it.set_tensor(i_in, x[None])
        it.invoke()
        outs[k[0]] = it.get_tensor(i_out)[0]
        k[0] += 1

    ns = time_calls(call, xs, gap_s)
    return _row("litert", ns, _diff(outs, ref), "Interpreter, num_threads=1")


def _bench_onnx(model, xs: np.ndarray, ref: np.ndarray, gap_s: float = 0.0) -> BenchRow:
    try:
        import onnxruntime as ort
        import tf2onnx
    except ImportError:
        return BenchRow("onnxruntime", 0, None, None, None,
                        "skipped: onnxruntime/tf2onnx not installed "
                        "(pip install 'neurogrs[bench]')")
    import tensorflow as tf

    sig = (tf.TensorSpec((None, *xs.shape[1:]), tf.float32, name="x"),)
    fn = tf.function(lambda x: model(x, training=False))
    with contextlib.redirect_stdout(sys.stderr):
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=sig, opset=17)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = np.empty((len(xs), ref.shape[1]), np.float32)
    k = [0]

    def call(x):
        outs[k[0]] = sess.run(None, {name: x[None]})[0][0]
        k[0] += 1

    ns = time_calls(call, xs, gap_s)
    return _row("onnxruntime", ns, _diff(outs, ref), "InferenceSession, 1 thread")


def _peer(label: str, fn, *args) -> BenchRow:
    try:
        return fn(*args)
    except ImportError as exc:
        return BenchRow(label, 0, None, None, None, f"skipped: {exc}")
    except Exception as exc:  # a peer's converter failing must not hide our numbers
        return BenchRow(label, 0, None, None, None, f"failed: {type(exc).__name__}: {exc}"[:200])


# ------------------------------------------------------------------------------- main
def run_inference_bench(
    spec: ModelSpec,
    model_hash: str,
    settings: InferenceBenchSettings | None = None,
    engine_options: dict | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Time every path on the same frames; returns a JSON-ready dict."""
    from neurogrs.inference.c_engine import CEngine
    from neurogrs.inference.numba_engine import NumbaEngine
    from neurogrs.inference.numpy_engine import NumpyEngine

    s = settings or InferenceBenchSettings()
    say = log or (lambda msg: None)
    rng = np.random.default_rng(s.seed)
    frames = rng.normal(0.0, 1.0, size=(s.frames, spec.n_inputs)).astype(np.float32)
    ref = forward(spec, frames)
    rows: list[BenchRow] = []

    engines = [("numpy", lambda: NumpyEngine(spec, model_hash)),
               ("numba", lambda: NumbaEngine(spec, model_hash)),
               ("c", lambda: CEngine(spec, model_hash, **(engine_options or {})))]
    c_engine = None
    for label, build in engines:
        say(f"building {label} engine")
        eng = build()
        outs = np.empty_like(ref)
        k = [0]

        def call(f, eng=eng, outs=outs, k=k):
            outs[k[0]] = eng.predict(f)
            k[0] += 1

        if eng.stateful:  # temporal context: the frames are one stream, from a fresh state
            def call(f, eng=eng, outs=outs, k=k, state=eng.new_state()):  # noqa: F811
                outs[k[0]] = eng.predict(f, state)
                k[0] += 1

        say(f"timing {label}: {s.frames} frames")
        ns = time_calls(call, frames, s.gap_ms / 1e3)
        note = f"binding: {eng.binding}, kernels: {eng.kernels}" if label == "c" else ""
        rows.append(_row(label, ns, _diff(outs, ref), note))
        if label == "c":
            c_engine = eng
    assert c_engine is not None
    ns_c = c_engine.bench_in_c(frames)
    rows.append(_row("c (in C)", ns_c, None, "clock_gettime around each call"))
    batch_ns = []
    for _ in range(3):  # best of three: one call, the loop runs in C
        t0 = time.perf_counter_ns()
        c_engine.predict_batch(frames)
        batch_ns.append(time.perf_counter_ns() - t0)
    batch_us = min(batch_ns) / 1e3 / s.frames

    if s.peers and spec.stateful:
        for label in ("keras model(x)", "litert", "onnxruntime"):
            rows.append(BenchRow(label, 0, None, None, None,
                                 "skipped: stateful model (temporal context)"))
    elif s.peers:
        say("building the Keras model (TensorFlow import takes a few seconds)")
        try:
            model = _keras_model(spec)
        except Exception as exc:  # no TensorFlow: engines' numbers still stand
            for label in ("keras model(x)", "litert", "onnxruntime"):
                rows.append(BenchRow(label, 0, None, None, None,
                                     f"skipped: no Keras model ({type(exc).__name__}: {exc})"))
        else:
            xs = spec.preprocessing.apply(frames)
            say(f"timing keras model(x): {s.keras_frames} frames")
            nk = min(s.keras_frames, s.frames)
            gap = s.gap_ms / 1e3
            rows.append(_peer("keras model(x)", _bench_keras, model, xs[:nk], ref[:nk], gap))
            say("converting and timing litert")
            rows.append(_peer("litert", _bench_litert, model, xs, ref, gap))
            say("converting and timing onnxruntime")
            rows.append(_peer("onnxruntime", _bench_onnx, model, xs, ref, gap))

    base = next((r for r in rows if r.path == "litert" and r.median_us), None)
    summary = spec.summary()
    return {
        "model": spec.name,
        "hash": model_hash,
        "n_inputs": spec.n_inputs,
        "structure": summary["structure"],
        "flops": summary["flops"],
        "effective_flops": summary["effective_flops"],
        "params": summary["params"],
        "nonzero_params": summary["nonzero_params"],
        "frames": s.frames,
        "gap_ms": float(s.gap_ms),
        "c_batch_us_per_frame": batch_us,
        "rows": [{**asdict(r), "vs_litert": (r.median_us / base.median_us
                                             if base and r.median_us else None)}
                 for r in rows],
    }


def format_table(result: dict) -> str:
    """The human-readable table of a run_inference_bench result."""
    lines = [
        f"model {result['model']} ({result['hash'][:12]}), N={result['n_inputs']}, "
        f"structure {result['structure']}, FLOPs {result['flops']} "
        f"(effective {result['effective_flops']}), params {result['params']} "
        f"({result['nonzero_params']} nonzero)",
        f"one frame per call, one thread; {result['frames']} random frames"
        + (f"; {result['gap_ms']:g} ms idle before each call (c (in C) and the batch line "
           "run back to back)" if result.get("gap_ms") else ""),
        "",
        f"{'path':<16}{'frames':>8}{'median us':>11}{'p99 us':>10}{'vs litert':>11}"
        f"{'max|d| vs ref':>17}  note",
    ]
    for r in result["rows"]:
        def f(v, spec):
            return format(v, spec) if v is not None else "-"
        lines.append(f"{r['path']:<16}{r['frames']:>8}{f(r['median_us'], '.2f'):>11}"
                     f"{f(r['p99_us'], '.2f'):>10}{f(r['vs_litert'], '.2f'):>11}"
                     f"{f(r['max_abs_diff'], '.1e'):>17}  {r['note']}")
    lines.append("")
    lines.append("median/p99 us: microseconds per call; vs litert: median / litert's median; "
                 "max|d| vs ref: largest absolute difference of the outputs from the "
                 "reference, ref = numpy forward() of all frames in one batch (so the numpy "
                 "row is compared too)")
    lines.append(f"c predict_batch (loop in C, no per-call timer, best of 3): "
                 f"{result['c_batch_us_per_frame']:.3f} us per frame")
    return "\n".join(lines)
