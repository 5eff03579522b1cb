"""The hot-path shortcuts agree with the strict code they shortcut.

- decode_frame/decode_prediction try a one-pass decoder first and fall back to the
  step-by-step one: the one-pass decoder must never accept what the strict one rejects, and
  must return the same values (property tests over valid and mutated messages).
- FrameEncoder/PredictionEncoder produce the same bytes as encode_frame/encode_prediction.
- FastCounter/FastHistogram export what prometheus-client's Counter/Histogram would.
- The compiled engines take the service's read-only received buffer on their fast path.
"""
from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from neurogrs.stream import protocol as P
from neurogrs.stream.metrics import FastCounter, FastHistogram, ServiceMetrics
from stream_helpers import RECV_TIMEOUT_S

sessions = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,20}", fullmatch=True)
finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
any_value = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(),
                      st.text(max_size=8), st.binary(max_size=16),
                      st.lists(st.integers(-5, 300), max_size=3))
FRAME_KEYS = ("v", "session", "seq", "t_src_ns", "dtype", "shape", "data")
PRED_KEYS = ("v", "session", "seq", "t_src_ns", "t_recv_ns", "t_pub_ns", "label", "probs",
             "model", "late")


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except P.BadMessage as exc:
        return ("bad", exc.reason)


def _same_frame(a, b):
    return (a[0] == b[0] == "bad" and a[1] == b[1]) or (
        a[0] == b[0] == "ok" and a[1][:3] == b[1][:3] and np.array_equal(a[1].data, b[1].data)
        and a[1].data.dtype == b[1].data.dtype == np.float32)


@settings(max_examples=400, deadline=None)
@given(sessions, st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1),
       st.lists(finite32, min_size=1, max_size=12), st.data())
def test_frame_fast_path_agrees_with_strict(session, seq, t_src, values, data):
    body = {"v": 1, "session": session, "seq": seq, "t_src_ns": t_src, "dtype": "<f4",
            "shape": [len(values)], "data": np.asarray(values, "<f4").tobytes()}
    # mutate: drop, replace or add keys, or take a non-finite value
    for _ in range(data.draw(st.integers(0, 2))):
        op = data.draw(st.sampled_from(("drop", "replace", "add", "nonfinite", "none")))
        if op == "drop":
            body.pop(data.draw(st.sampled_from(FRAME_KEYS)), None)
        elif op == "replace":
            body[data.draw(st.sampled_from(FRAME_KEYS))] = data.draw(any_value)
        elif op == "add":
            body[data.draw(st.text(max_size=5))] = data.draw(any_value)
        elif op == "nonfinite":
            bad = values[:]
            bad[data.draw(st.integers(0, len(bad) - 1))] = data.draw(
                st.sampled_from((float("nan"), float("inf"), float("-inf"))))
            body["data"] = np.asarray(bad, "<f4").tobytes()
    topic = data.draw(st.sampled_from((P.topic(P.FRAME_PREFIX, session), b"frame.other",
                                       b"frame.", b"frame.a b")))
    parts = [topic, msgpack.packb(body, use_bin_type=True)]
    n = data.draw(st.sampled_from((None, len(values), len(values) + 1)))
    fast = P._decode_frame_fast(parts, n, P.DEFAULT_MAX_BODY_BYTES)
    strict = _outcome(P._decode_frame_strict, parts, n, P.DEFAULT_MAX_BODY_BYTES)
    if fast is not None:  # the fast path may only accept what the strict one accepts
        assert _same_frame(("ok", fast), strict), (body, strict)
    assert _same_frame(_outcome(P.decode_frame, parts, n), strict)


@settings(max_examples=300, deadline=None)
@given(sessions, st.lists(st.floats(0, 1), min_size=1, max_size=6), st.booleans(), st.data())
def test_prediction_fast_path_agrees_with_strict(session, probs, late, data):
    body = {"v": 1, "session": session, "seq": 3, "t_src_ns": 10, "t_recv_ns": 11,
            "t_pub_ns": 12, "label": 0, "probs": probs, "model": "m", "late": late}
    for _ in range(data.draw(st.integers(0, 2))):
        if data.draw(st.booleans()):
            body.pop(data.draw(st.sampled_from(PRED_KEYS)), None)
        else:
            body[data.draw(st.sampled_from(PRED_KEYS))] = data.draw(any_value)
    parts = [P.topic(P.PRED_PREFIX, session), msgpack.packb(body, use_bin_type=True)]
    fast = P._decode_prediction_fast(parts, P.DEFAULT_MAX_BODY_BYTES)
    strict = _outcome(P.decode_prediction, parts)
    if fast is not None:
        assert strict == ("ok", fast)


@settings(max_examples=200, deadline=None)
@given(sessions, st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1),
       st.lists(finite32, min_size=1, max_size=40))
def test_frame_encoder_bytes_match(session, seq, t_src, values):
    x = np.asarray(values, np.float32)
    assert P.FrameEncoder(session).encode(seq, x, t_src) == P.encode_frame(session, seq, x, t_src)
    strided = np.repeat(x, 2)[::2]  # not contiguous: the encoder falls back, same bytes
    assert P.FrameEncoder(session).encode(seq, strided, t_src) == P.encode_frame(session, seq, x, t_src)


@settings(max_examples=200, deadline=None)
@given(sessions, st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1),
       st.lists(st.floats(0, 1, width=32), min_size=1, max_size=8), st.booleans())
def test_prediction_encoder_bytes_match(session, seq, t, probs, late):
    enc = P.PredictionEncoder("abc")
    got = enc.encode(session, seq, t, t, t, len(probs) - 1, probs, late)
    want = P.encode_prediction(P.Prediction(session, seq, t, t, t, len(probs) - 1,
                                            tuple(probs), "abc", late))
    assert got == want


def _exposition_lines(reg, name):
    return sorted(line for line in generate_latest(reg).decode().splitlines()
                  if line.startswith(name) and "_created" not in line)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from((0.0, 1e-5, 2e-5, 2.5e-5, 1e-3, 0.1, 0.1000001, 5.0, 1e9)),
                max_size=30))
def test_fast_histogram_matches_prometheus_client(values):
    buckets = (1e-5, 2.5e-5, 1e-3, 0.1, 1.0)
    ref_reg = CollectorRegistry()
    ref = Histogram("h_seconds", "doc", buckets=buckets, registry=ref_reg)
    fast = FastHistogram("h_seconds", "doc", buckets)
    reg = CollectorRegistry()
    reg.register(type("C", (), {"collect": lambda self: [fast.family()]})())
    for v in values:
        ref.observe(v)
        fast.observe(v)
    assert _exposition_lines(reg, "h_seconds") == _exposition_lines(ref_reg, "h_seconds")
    assert reg.get_sample_value("h_seconds_count") == reg.get_sample_value(
        "h_seconds_bucket", {"le": "+Inf"}) == len(values)


def test_fast_counter_rules():
    c = FastCounter("x", "doc", ("reason",), ("a", "b"))
    c.labels(reason="a").inc(2)
    assert c.labels(reason="a").value == 2 and c.labels(reason="b").value == 0
    with pytest.raises(ValueError):
        c.labels(reason="zzz")  # bounded label values: undeclared ones are refused
    with pytest.raises(ValueError):
        c.labels(reason="a").inc(-1)


def test_metrics_are_current_at_every_scrape():
    reg = CollectorRegistry()
    m = ServiceMetrics.create(reg, 0.1, "h", "c")
    for i in range(3):
        m.frames_received.value += 1  # what the service's hot path does
        m.end_to_end_seconds.observe(0.001)
        assert reg.get_sample_value("neurogrs_frames_received_total") == i + 1
        assert reg.get_sample_value("neurogrs_end_to_end_seconds_count") == i + 1


@pytest.mark.parametrize("engine_name", ["numba", "c"])
def test_engines_take_the_received_read_only_buffer_on_their_fast_path(start_service, artifact_dir,
                                                                      engine, engine_name):
    """The service hands the engine the received buffer (a read-only view) as it is; the
    compiled engines make it suit their code themselves (numba copies it, the C binding
    reads it as const) without falling back to the checked path (~50 us for numba)."""
    from neurogrs.errors import CompilerError
    from neurogrs.inference import load_engine

    try:
        eng = load_engine(artifact_dir, engine_name)
    except CompilerError as exc:
        pytest.skip(f"engine {engine_name} unavailable here: {exc}")
    seen, checked = [], []
    predict, check = eng.predict, eng.check_frame
    eng.predict = lambda x: (seen.append(x.flags.writeable), predict(x))[1]
    eng.check_frame = lambda x: (checked.append(1), check(x))[1]
    run = start_service(eng=eng, policy="all")
    with run.subscriber("s1") as sub:
        feeder = run.feeder("s1")
        xs = np.random.default_rng(1).normal(size=(5, eng.n_inputs)).astype(np.float32)
        seen.clear()
        checked.clear()
        for i, x in enumerate(xs):
            feeder.frame(i, x)
        got = []
        while len(got) < len(xs):
            msg = sub.recv(RECV_TIMEOUT_S)
            assert msg is not None, "prediction missing"
            if isinstance(msg, P.Prediction):
                got.append(msg)
    assert seen == [False] * len(xs)  # the received buffer itself, no copy by the service
    assert checked == []  # ... and no engine took its slow, checked path for it
    for x, p in zip(xs, got):
        np.testing.assert_allclose(p.probs, engine.predict(x), rtol=1e-4, atol=1e-6)
