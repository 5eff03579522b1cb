"""The one-pass decoders of protocol v1 (the service's and the client's hot path).

Part of the wire format with `neurogrs.stream.protocol`, which uses them first and falls
back to its step-by-step decoders for anything they do not accept: each returns the
decoded message, or None for anything unusual (it never raises, never explains). They
accept exactly a subset of what the step-by-step decoders accept
(tests/stream/test_stream_fastpath.py checks they agree). Measured reason for their
shape: docs/service.md, "Before and after the hot-path work".
"""
from __future__ import annotations

import functools
from typing import Sequence

import msgpack
import numpy as np

from neurogrs.stream.messages import (
    DTYPE, FRAME_PREFIX, MALFORMED, MAX_INPUTS, PRED_PREFIX, VERSION, BadMessage, Frame,
    Prediction, _INT64_MAX, _SESSION_RE,
)

__all__: list[str] = []  # private helpers of neurogrs.stream.protocol


@functools.lru_cache(maxsize=1024)  # valid topics repeat: parse each once (errors not cached)
def _topic_session(topic_bytes: bytes, prefix: bytes) -> str:
    if not topic_bytes.startswith(prefix):
        raise BadMessage(MALFORMED, f"topic must start with {prefix!r}")
    try:
        name = topic_bytes[len(prefix):].decode("ascii")
    except UnicodeDecodeError:
        raise BadMessage(MALFORMED, "topic session is not ASCII") from None
    if not _SESSION_RE.fullmatch(name):
        raise BadMessage(MALFORMED, f"topic session {name[:70]!r} is not a valid session name")
    return name


_F4 = np.dtype("<f4")
_NATIVE_F4 = _F4 == np.dtype(np.float32)
_FAST_TOPICS: dict[bytes, str] = {}  # valid frame topics seen -> session (bounded)
_isfinite = np.isfinite
_unpackb = msgpack.unpackb


def _cached_session(cache: dict[bytes, str], topic_b: bytes, prefix: bytes) -> str | None:
    """The session of a valid `<prefix><session>` topic (memoised, bounded), else None."""
    session = cache.get(topic_b)
    if session is None:
        try:
            session = _topic_session(topic_b, prefix)
        except BadMessage:
            return None
        if len(cache) < 1024:
            cache[topic_b] = session
    return session


def _fast_head(parts: Sequence[bytes], max_bytes: int, cache: dict[bytes, str],
               prefix: bytes) -> tuple[str, dict] | None:
    """(session, body map) of a well-formed two-part message, else None (never raises)."""
    if len(parts) != 2:
        return None
    topic_b, body = parts
    if type(topic_b) is not bytes or type(body) is not bytes or len(body) > max_bytes:
        return None
    session = _cached_session(cache, topic_b, prefix)
    if session is None:
        return None
    try:  # the same limits as _unpack (str/bin lengths are bounded by len(body) <= max_bytes)
        obj = _unpackb(body, max_array_len=MAX_INPUTS, max_map_len=64, max_ext_len=0)
    except Exception:
        return None
    if type(obj) is not dict:
        return None
    return session, obj


def _decode_frame_fast(parts: Sequence[bytes], n_inputs: int | None, max_bytes: int) -> Frame | None:
    """A valid frame in one pass, or None when anything is unusual (never raises)."""
    if not _NATIVE_F4:
        return None
    head = _fast_head(parts, max_bytes, _FAST_TOPICS, FRAME_PREFIX)
    if head is None:
        return None
    session, obj = head
    g = obj.get
    v, seq, t_src, shape, data, run = g("v"), g("seq"), g("t_src_ns"), g("shape"), g("data"), g("run")
    if not (type(v) is int and v == VERSION and type(seq) is int and 0 <= seq <= _INT64_MAX
            and type(t_src) is int and 0 <= t_src <= _INT64_MAX and g("session") == session
            and g("dtype") == DTYPE and type(shape) is list and len(shape) == 1
            and type(data) is bytes):
        return None
    # only the known keys (no unknown ones, which could hide a duplicate key in a nested
    # map), each once (a map header counting more keys than the dict holds: duplicates)
    if run is None:
        if len(obj) != 7:
            return None
    elif type(run) is not int or not 0 <= run <= _INT64_MAX or len(obj) != 8:
        return None
    if _map_len(parts[1]) != len(obj):
        return None
    n = shape[0]
    if (type(n) is not int or len(data) != 4 * n
            or (n != n_inputs if n_inputs is not None else not 1 <= n <= MAX_INPUTS)):
        return None
    arr = np.frombuffer(data, _F4)
    if not _isfinite(arr).all():
        return None
    return Frame(session, seq, t_src, arr, run)


def _map_len(body: bytes) -> int:
    """The number of keys a msgpack map header declares (-1: not a map header)."""
    b = body[0]
    if 0x80 <= b <= 0x8F:
        return b & 0x0F
    if b == 0xDE:
        return int.from_bytes(body[1:3], "big")
    if b == 0xDF:
        return int.from_bytes(body[1:5], "big")
    return -1


_FAST_PRED_TOPICS: dict[bytes, str] = {}  # valid prediction topics seen -> session (bounded)


def _decode_prediction_fast(parts: Sequence[bytes], max_bytes: int) -> Prediction | None:
    """A valid prediction in one pass, or None when anything is unusual (never raises)."""
    head = _fast_head(parts, max_bytes, _FAST_PRED_TOPICS, PRED_PREFIX)
    if head is None:
        return None
    session, obj = head
    g = obj.get
    v, seq, label, probs, model, late = g("v"), g("seq"), g("label"), g("probs"), g("model"), g("late")
    t_src, t_recv, t_pub = g("t_src_ns"), g("t_recv_ns"), g("t_pub_ns")
    if not (type(v) is int and v == VERSION and g("session") == session
            and type(seq) is int and 0 <= seq <= _INT64_MAX
            and type(t_src) is int and 0 <= t_src <= _INT64_MAX
            and type(t_recv) is int and 0 <= t_recv <= _INT64_MAX
            and type(t_pub) is int and 0 <= t_pub <= _INT64_MAX
            and type(label) is int and type(probs) is list and 0 <= label < len(probs)
            and type(model) is str and type(late) is bool):
        return None
    skipped, run = g("skipped", 0), g("run")
    if not (type(skipped) is int and 0 <= skipped <= _INT64_MAX):
        return None
    if run is not None and not (type(run) is int and 0 <= run <= _INT64_MAX):
        return None
    if _map_len(parts[1]) != len(obj):  # a duplicate key: the strict decoder explains
        return None
    for x in probs:
        if type(x) is not float:
            return None
    return Prediction(session, seq, t_src, t_recv, t_pub, label, tuple(probs), model, late, skipped,
                      run)
