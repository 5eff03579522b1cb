"""Protocol v1: round trips (property-based), strict rejection with a reason, endpoints."""
from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurogrs.errors import ConfigError, ProtocolError
from neurogrs.stream import protocol as P
from neurogrs.stream import transport as T

sessions = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_\-]{0,20}\Z")
seqs = st.integers(0, 2**63 - 1)
ns = st.integers(0, 2**63 - 1)
finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(sessions, seqs, ns, st.lists(finite32, min_size=1, max_size=64))
def test_frame_round_trip(session, seq, t_src, values):
    data = np.asarray(values, dtype=np.float32)
    parts = P.encode_frame(session, seq, data, t_src)
    assert parts[0] == b"frame." + session.encode()
    f = P.decode_frame(parts, n_inputs=len(values))
    assert (f.session, f.seq, f.t_src_ns) == (session, seq, t_src)
    assert f.data.dtype == np.float32
    np.testing.assert_array_equal(f.data, data)


@settings(max_examples=200, deadline=None)
@given(sessions, seqs, ns, ns, ns, st.lists(st.floats(0, 1), min_size=1, max_size=16),
       st.booleans(), st.data())
def test_prediction_round_trip(session, seq, a, b, c, probs, late, data):
    label = data.draw(st.integers(0, len(probs) - 1))
    p = P.Prediction(session, seq, a, b, c, label, tuple(probs), "ab" * 32, late)
    assert P.decode_prediction(P.encode_prediction(p)) == p
    assert P.decode_message(P.encode_prediction(p)) == p


@settings(max_examples=100, deadline=None)
@given(sessions, st.one_of(st.none(), seqs), st.sampled_from(P.BAD_INPUT_REASONS), st.text(max_size=300))
def test_error_and_end_round_trip(session, seq, reason, detail):
    e = P.decode_error(P.encode_error(session, seq, reason, detail))
    assert (e.session, e.seq, e.reason, e.detail) == (session, seq, reason, detail[:200])
    end = P.decode_end(P.encode_end(session, 5, 4, 123))
    assert end == P.EndOfStream(session, 5, 123, 4)


def test_error_without_session_uses_placeholder():
    parts = P.encode_error(None, None, "malformed", "x")
    assert parts[0] == b"error._"
    assert P.decode_error(parts).session == "_"


def test_hello_round_trip():
    h = P.Hello("f" * 64, "c", 20, ("still", "moving"), 100_000_000)
    assert P.decode_hello(P.encode_hello(h)) == h


def _body(**over):
    d = {"v": 1, "session": "s", "seq": 3, "t_src_ns": 10, "dtype": "<f4", "shape": [2],
         "data": np.ones(2, np.float32).tobytes()}
    for k, v in over.items():
        if v is _DROP:
            d.pop(k)
        else:
            d[k] = v
    return msgpack.packb(d, use_bin_type=True)


_DROP = object()


@pytest.mark.parametrize("parts,reason", [
    ([b"frame.s"], "malformed"),
    ([b"frame.s", b"", b""], "malformed"),
    ([b"frame.s", b"\xc1\xc1garbage"], "malformed"),
    ([b"frame.s", _body()[:-3]], "malformed"),  # truncated
    ([b"frame.s", msgpack.packb([1, 2])], "malformed"),
    ([b"frame.s", msgpack.packb(7)], "malformed"),
    ([b"frame.s\xff", _body()], "malformed"),
    ([b"frame.s", _body(v="1")], "bad_field"),
    ([b"frame.s", _body(v=True)], "bad_field"),
    ([b"frame.s", _body(v=2)], "bad_version"),
    ([b"frame.s", _body(session="t")], "bad_field"),
    ([b"frame.s", _body(seq=-1)], "bad_field"),
    ([b"frame.s", _body(seq=1.5)], "bad_field"),
    ([b"frame.s", _body(seq=_DROP)], "bad_field"),
    ([b"frame.s", _body(t_src_ns="now")], "bad_field"),
    ([b"frame.s", _body(dtype="<f8")], "bad_dtype"),
    ([b"frame.s", _body(dtype=">f4")], "bad_dtype"),
    ([b"frame.s", _body(dtype=4)], "bad_field"),
    ([b"frame.s", _body(shape=[3])], "bad_shape"),
    ([b"frame.s", _body(shape=[2, 1])], "bad_shape"),
    ([b"frame.s", _body(shape="2")], "bad_shape"),
    ([b"frame.s", _body(data="abcdefgh")], "bad_field"),
    ([b"frame.s", _body(data=np.array([1, np.nan], np.float32).tobytes())], "non_finite"),
    ([b"frame.s", _body(data=np.array([np.inf, 1], np.float32).tobytes())], "non_finite"),
    ([b"frame.s", _body(data=b"\x00" * 4096)], "oversized"),
])
def test_decode_frame_rejects_with_reason(parts, reason):
    with pytest.raises(ProtocolError) as info:
        P.decode_frame(parts, n_inputs=2, max_bytes=1024)
    assert info.value.reason == reason


def test_bad_message_carries_session_and_seq():
    with pytest.raises(P.BadMessage) as info:
        P.decode_frame([b"frame.s", _body(dtype="<f8")], n_inputs=2)
    assert (info.value.session, info.value.seq) == ("s", 3)


def test_model_size_mismatch_is_bad_shape():
    with pytest.raises(P.BadMessage) as info:
        P.decode_frame(P.encode_frame("s", 0, np.zeros(3, np.float32)), n_inputs=4)
    assert info.value.reason == "bad_shape"


def test_decoded_frame_is_zero_copy_readonly():
    f = P.decode_frame(P.encode_frame("s", 0, np.arange(4, dtype=np.float32)))
    assert not f.data.flags.writeable


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=4))
def test_decode_never_raises_anything_but_protocol_error(parts):
    for head in (b"frame.s", b"pred.s", b"error.s", b"end.s", b"hello"):
        try:
            P.decode_message([head, *parts[:1]] if parts else [head])
        except ProtocolError:
            pass


@pytest.mark.parametrize("text,default,expected", [
    ("@tcp://127.0.0.1:5555", "connect", ("bind", "tcp://127.0.0.1:5555")),
    (">tcp://127.0.0.1:5555", "bind", ("connect", "tcp://127.0.0.1:5555")),
    ("tcp://127.0.0.1:5555", "bind", ("bind", "tcp://127.0.0.1:5555")),
    ("tcp://127.0.0.1:5555", "connect", ("connect", "tcp://127.0.0.1:5555")),
    ("@tcp://127.0.0.1:*", "connect", ("bind", "tcp://127.0.0.1:*")),
    ("ipc:///tmp/x", "connect", ("connect", "ipc:///tmp/x")),
])
def test_parse_endpoint(text, default, expected):
    e = T.parse_endpoint(text, default)
    assert (e.action, e.address) == expected


@pytest.mark.parametrize("text", ["", "@", "udp://x:1", "tcp://host", "tcp://h:0", "tcp://h:99999", "5555"])
def test_parse_endpoint_rejects(text):
    with pytest.raises(ConfigError):
        T.parse_endpoint(text)


@pytest.mark.parametrize("name", ["", "a.b", "-a", "a" * 65, "é", "a b"])
def test_bad_session_names(name):
    with pytest.raises(ConfigError):
        P.check_session_name(name)


def test_prediction_skipped_field_round_trips_and_is_optional():
    from neurogrs.stream.protocol import Prediction, PredictionEncoder, decode_prediction, encode_prediction

    p = Prediction("s1", 7, 1, 2, 3, 1, (0.25, 0.75), "ab" * 32, False, skipped=4)
    assert decode_prediction(encode_prediction(p)) == p
    fast = PredictionEncoder("ab" * 32).encode("s1", 7, 1, 2, 3, 1, [0.25, 0.75], False, 4)
    assert fast == encode_prediction(p)
    plain = p._replace(skipped=0)
    parts = encode_prediction(plain)
    assert b"skipped" not in parts[1]  # absent when zero: byte-identical to the original v1
    assert decode_prediction(parts).skipped == 0


def test_exported_members():
    from neurogrs.stream import messages

    assert set(messages.__all__) <= set(P.__all__)  # one public module for the wire format
    for name in P.__all__:
        assert getattr(P, name) is not None, name
    assert P.ERROR_REASONS == P.BAD_INPUT_REASONS + (P.STALE,)
    assert set(P.DROP_REASONS) == {"stale", "conflated", "seq_gap", "bad_input"}


@pytest.mark.parametrize("name", ["m1\n", "m1\r\n", "\nm1", "m1 ", ""])
def test_session_names_are_matched_whole(name):
    # `$` matches before a trailing newline: "m1\n" used to pass and reach topics and files
    with pytest.raises(ConfigError):
        P.check_session_name(name)
    with pytest.raises(P.BadMessage) as exc:
        P.decode_frame([b"frame." + name.encode(), _body(session=name)], n_inputs=2)
    assert exc.value.reason == "malformed"
    assert P.encode_error(name, 1, "malformed")[0] == b"error._"
    from neurogrs.stream.service import ServiceSettings

    with pytest.raises(ConfigError):
        ServiceSettings(sessions=(name,))


def test_every_integer_encoding_is_judged_by_value():
    # protocol.md: any msgpack int format is accepted for an int field (here v as uint8,
    # seq as int64, shape's N as uint16, t_src as int32); the fast and strict decoders agree
    data = np.ones(2, np.float32).tobytes()
    body = (b"\x87" + msgpack.packb("v") + b"\xcc\x01" + msgpack.packb("session") + msgpack.packb("s")
            + msgpack.packb("seq") + b"\xd3" + (7).to_bytes(8, "big")
            + msgpack.packb("t_src_ns") + b"\xd2" + (10).to_bytes(4, "big")
            + msgpack.packb("dtype") + msgpack.packb("<f4")
            + msgpack.packb("shape") + b"\x91\xcd\x00\x02"
            + msgpack.packb("data") + msgpack.packb(data, use_bin_type=True))
    f = P.decode_frame([b"frame.s", body], n_inputs=2)
    assert (f.session, f.seq, f.t_src_ns) == ("s", 7, 10)
    assert P._decode_frame_strict([b"frame.s", body], 2, P.DEFAULT_MAX_BODY_BYTES).seq == 7
