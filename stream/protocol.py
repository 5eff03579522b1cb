"""Wire protocol v1: the ONE module that knows how frames, predictions, errors and
end-of-stream markers look on the wire (specification: docs/protocol.md).

Every message is a two-part ZeroMQ message ``[topic, body]``:

    topic                body (a msgpack map)
    frame.<session>      {v, session, seq, t_src_ns, dtype: "<f4", shape: [N], data: bin}
    pred.<session>       {v, session, seq, t_src_ns, t_recv_ns, t_pub_ns, label, probs,
                          model, late}
    error.<session>      {v, session, seq, reason, detail}     (session "_" when unknown)
    end.<session>        {v, session, seq, t_src_ns, frames}    (end of stream)
    hello                {v, model, engine, n_inputs, labels, deadline_ns}

Decoding is strict: every problem raises `BadMessage` (a `ProtocolError`) carrying a
`reason` from `BAD_INPUT_REASONS`, plus the session and seq when they could be read, so
the service can count it and report it on ``error.<session>``. Frames and predictions are
first tried by a one-pass decoder (the hot path, `neurogrs.stream.fastdecode`) that
accepts exactly what the step-by-step decoder accepts and returns None for anything else.

The declarations (version, topics, limits, reasons, message types) live in
`neurogrs.stream.messages` and are re-exported here; sockets and endpoints are
`neurogrs.stream.transport`.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import msgpack
import numpy as np

from neurogrs.errors import ProtocolError
from neurogrs.stream import messages as _messages
from neurogrs.stream.fastdecode import (  # the one-pass decoders (tests reach them here)
    _F4, _decode_frame_fast, _decode_prediction_fast, _map_len, _topic_session,
)
from neurogrs.stream.messages import (  # the declarations are part of this module's API
    VERSION, DTYPE, FRAME_PREFIX, PRED_PREFIX, ERROR_PREFIX, END_PREFIX, HELLO_TOPIC,
    UNKNOWN_SESSION, DEFAULT_MAX_BODY_BYTES, MAX_INPUTS, MAX_DETAIL_CHARS, MALFORMED,
    BAD_FIELD, BAD_VERSION, BAD_DTYPE, BAD_SHAPE, NON_FINITE, OVERSIZED, SEQ_DUPLICATE,
    SEQ_DECREASING, TOO_MANY_SESSIONS, ENGINE_ERROR, BAD_INPUT_REASONS, STALE,
    ERROR_REASONS, CONFLATED, SEQ_GAP, BAD_INPUT, DROP_REASONS, UNKNOWN_TOPIC,
    EXCLUDED_SESSION, IGNORED_REASONS, BadMessage, Frame,
    Prediction, ErrorReport, EndOfStream, Hello, check_session_name, topic,
    _INT64_MAX, _SESSION_RE,
)

__all__ = [
    *_messages.__all__,
    "encode_frame",
    "FrameEncoder",
    "new_run",
    "decode_frame",
    "encode_prediction",
    "PredictionEncoder",
    "decode_prediction",
    "encode_error",
    "decode_error",
    "encode_end",
    "decode_end",
    "encode_hello",
    "decode_hello",
    "decode_message",
]


# ----------------------------------------------------------------------------- helpers
def _pack(body: dict) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list) -> dict:
    """msgpack object_pairs_hook: a map that names a key twice is malformed (a last-wins
    dict would silently pick one of the two values)."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _DuplicateKey(f"duplicate map key {str(dup)[:40]!r}")
    return d


def _unpack(body: bytes, max_bytes: int) -> dict:
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise BadMessage(MALFORMED, f"body must be bytes, got {type(body).__name__}")
    if len(body) > max_bytes:
        raise BadMessage(OVERSIZED, f"body has {len(body)} bytes, limit {max_bytes}")
    try:
        # surrogateescape: a str that is not UTF-8 still decodes (as a str), so a field sent
        # as str is a bad_field whatever its bytes, not sometimes malformed
        obj = msgpack.unpackb(
            body, raw=False, strict_map_key=True, use_list=True, unicode_errors="surrogateescape",
            object_pairs_hook=_no_duplicates, max_bin_len=max_bytes, max_str_len=max_bytes,
            max_array_len=MAX_INPUTS, max_map_len=64, max_ext_len=0,
        )
    except _DuplicateKey as exc:
        raise BadMessage(MALFORMED, str(exc)) from None
    except Exception as exc:  # msgpack raises ValueError, ExtraData, FormatError, ...
        raise BadMessage(MALFORMED, f"body is not one msgpack value: {exc}") from None
    if not isinstance(obj, dict):
        raise BadMessage(MALFORMED, f"body must be a msgpack map, got {type(obj).__name__}")
    return obj


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _session_from_topic(topic_bytes: Any, prefix: bytes) -> str:
    if not isinstance(topic_bytes, bytes):
        if not isinstance(topic_bytes, (bytearray, memoryview)):
            raise BadMessage(MALFORMED, f"topic must be bytes, got {type(topic_bytes).__name__}")
        topic_bytes = bytes(topic_bytes)
    return _topic_session(topic_bytes, prefix)


def _header(obj: dict, topic_session: str) -> tuple[str, int]:
    """Check v and session; return (session, seq) with seq validated."""
    v = obj.get("v")
    if not _is_int(v):
        raise BadMessage(BAD_FIELD, f"v must be an integer, got {type(v).__name__}", topic_session)
    seq = obj.get("seq")
    seq_ok = seq if _is_int(seq) and 0 <= seq <= _INT64_MAX else None
    if v != VERSION:
        raise BadMessage(BAD_VERSION, f"v={v} but this decoder speaks v={VERSION}", topic_session, seq_ok)
    session = obj.get("session")
    if session != topic_session:
        raise BadMessage(BAD_FIELD, f"session {str(session)[:70]!r} does not match topic session "
                         f"{topic_session!r}", topic_session, seq_ok)
    if seq_ok is None:
        raise BadMessage(BAD_FIELD, f"seq must be an integer 0..2^63-1, got {seq!r}"[:MAX_DETAIL_CHARS], topic_session)
    return session, seq


def _ns(obj: dict, key: str, session: str | None, seq: int | None) -> int:
    x = obj.get(key)
    if not _is_int(x) or not 0 <= x <= _INT64_MAX:
        raise BadMessage(BAD_FIELD, f"{key} must be an integer 0..2^63-1 (ns), got {x!r}"[:MAX_DETAIL_CHARS],
                         session, seq)
    return x


def _run(obj: dict, session: str | None, seq: int | None) -> int | None:
    """The optional `run` (a source's run id): absent/nil, or an integer 0..2^63-1."""
    x = obj.get("run")
    if x is not None and (not _is_int(x) or not 0 <= x <= _INT64_MAX):
        raise BadMessage(BAD_FIELD, f"run must be an integer 0..2^63-1, got {x!r}"[:MAX_DETAIL_CHARS],
                         session, seq)
    return x


def new_run() -> int:
    """A run id for a source starting now: its start time in ns (differs across restarts)."""
    return time.time_ns()


def _parts(parts: Sequence[bytes]) -> tuple[bytes, bytes]:
    if len(parts) != 2:
        raise BadMessage(MALFORMED, f"expected 2 message parts [topic, body], got {len(parts)}")
    return parts[0], parts[1]


# ----------------------------------------------------------------------------- frames
def encode_frame(session: str, seq: int, data: np.ndarray, t_src_ns: int | None = None,
                 run: int | None = None) -> list[bytes]:
    """[topic, body] of a frame; `t_src_ns` None: now; `run` None: no run field (v1)."""
    return FrameEncoder(session, run).encode(seq, data, time.time_ns() if t_src_ns is None else t_src_ns)


class FrameEncoder:
    """Encodes frames of one session (the replayer's hot path): one reused msgpack Packer,
    the topic computed once. A source passes `run=new_run()` once when it starts, so the
    service recognises a restart at once (docs/protocol.md, "Restarting a source")."""

    def __init__(self, session: str, run: int | None = None) -> None:
        self.session = check_session_name(session)
        self.topic = topic(FRAME_PREFIX, session)
        self._pack = msgpack.Packer(autoreset=True, use_bin_type=True).pack
        if run is not None and (not _is_int(run) or not 0 <= run <= _INT64_MAX):
            raise ProtocolError(f"run must be an integer 0..2^63-1, got {run!r}")
        self.run = run

    def encode(self, seq: int, data: np.ndarray, t_src_ns: int) -> list[bytes]:
        if (type(data) is not np.ndarray or data.dtype != _F4 or data.ndim != 1
                or not data.flags.c_contiguous):
            data = np.ascontiguousarray(data, dtype=_F4)
            if data.ndim != 1:
                raise ProtocolError(f"frame data must be 1-D, got shape {data.shape}")
        body = {"v": VERSION, "session": self.session, "seq": int(seq),
                "t_src_ns": int(t_src_ns), "dtype": DTYPE, "shape": [data.shape[0]],
                "data": data.tobytes()}
        if self.run is not None:
            body["run"] = self.run
        return [self.topic, self._pack(body)]


def decode_frame(parts: Sequence[bytes], n_inputs: int | None = None,
                 max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Frame:
    """Decode and validate a frame; raises BadMessage with a reason.

    The common case (a well-formed frame) is checked in one pass; anything unusual goes
    through the step-by-step decoder, which accepts exactly the same frames and explains
    every rejection (tests/stream/test_stream_protocol.py checks that both agree)."""
    frame = _decode_frame_fast(parts, n_inputs, max_bytes)
    if frame is not None:
        return frame
    return _decode_frame_strict(parts, n_inputs, max_bytes)


def _decode_frame_strict(parts: Sequence[bytes], n_inputs: int | None,
                         max_bytes: int) -> Frame:
    """Decode and validate a frame step by step; raises BadMessage with a reason."""
    if not parts:
        raise BadMessage(MALFORMED, "empty message")
    topic_session = _session_from_topic(parts[0], FRAME_PREFIX)
    if len(parts) != 2:
        raise BadMessage(MALFORMED, f"expected 2 message parts [topic, body], got {len(parts)}",
                         topic_session)
    body = parts[1]
    if isinstance(body, (bytes, bytearray)) and len(body) > max_bytes:
        raise BadMessage(OVERSIZED, f"body has {len(body)} bytes, limit {max_bytes}", topic_session)
    try:
        obj = _unpack(body, max_bytes)
    except BadMessage as exc:  # the topic still names the session: report it there
        exc.session = topic_session
        raise
    session, seq = _header(obj, topic_session)
    t_src = _ns(obj, "t_src_ns", session, seq)
    run = _run(obj, session, seq)
    dtype = obj.get("dtype")
    if not isinstance(dtype, str):
        raise BadMessage(BAD_FIELD, f"dtype must be a string, got {type(dtype).__name__}", session, seq)
    if dtype != DTYPE:
        raise BadMessage(BAD_DTYPE, f"dtype {dtype[:20]!r} is not {DTYPE!r}", session, seq)
    shape = obj.get("shape")
    if (not isinstance(shape, list) or len(shape) != 1 or not _is_int(shape[0])
            or not 1 <= shape[0] <= MAX_INPUTS):
        raise BadMessage(BAD_SHAPE, f"shape must be [N] with 1 <= N <= {MAX_INPUTS}, got {shape!r}"[:MAX_DETAIL_CHARS],
                         session, seq)
    n = shape[0]
    if n_inputs is not None and n != n_inputs:
        raise BadMessage(BAD_SHAPE, f"shape [{n}] but the model takes [{n_inputs}]", session, seq)
    data = obj.get("data")
    if not isinstance(data, bytes):
        raise BadMessage(BAD_FIELD, f"data must be msgpack bin, got {type(data).__name__}", session, seq)
    if len(data) != 4 * n:
        raise BadMessage(BAD_SHAPE, f"data has {len(data)} bytes, shape [{n}] needs {4 * n}", session, seq)
    arr = np.frombuffer(data, dtype="<f4")
    if not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise BadMessage(NON_FINITE, f"{bad} NaN/Inf value(s) in data", session, seq)
    if arr.dtype != np.float32:  # big-endian hosts: make it native for the engine
        arr = arr.astype(np.float32)
    return Frame(session, seq, t_src, arr, run)


# ----------------------------------------------------------------------------- predictions
def encode_prediction(p: Prediction) -> list[bytes]:
    return PredictionEncoder(p.model).encode(
        p.session, int(p.seq), int(p.t_src_ns), int(p.t_recv_ns), int(p.t_pub_ns), int(p.label),
        [float(x) for x in p.probs], bool(p.late), int(p.skipped), p.run)


class PredictionEncoder:
    """Encodes predictions of one model (the service's hot path): one reused msgpack Packer,
    a cached topic per session."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._pack = msgpack.Packer(autoreset=True, use_bin_type=True).pack
        self._topics: dict[str, bytes] = {}

    def encode(self, session: str, seq: int, t_src_ns: int, t_recv_ns: int, t_pub_ns: int,
               label: int, probs: list, late: bool, skipped: int = 0,
               run: int | None = None) -> list[bytes]:
        """`probs` a list of Python floats (ndarray.tolist()); the ints are Python ints."""
        t = self._topics.get(session)
        if t is None:
            t = topic(PRED_PREFIX, session)
            if len(self._topics) < 4096:
                self._topics[session] = t
        body = {"v": VERSION, "session": session, "seq": seq, "t_src_ns": t_src_ns,
                "t_recv_ns": t_recv_ns, "t_pub_ns": t_pub_ns, "label": label,
                "probs": probs, "model": self.model, "late": late}
        if skipped:
            body["skipped"] = skipped
        if run is not None:
            body["run"] = run
        return [t, self._pack(body)]


def decode_prediction(parts: Sequence[bytes], max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Prediction:
    p = _decode_prediction_fast(parts, max_bytes)
    if p is not None:
        return p
    topic_b, body = _parts(parts)
    topic_session = _session_from_topic(topic_b, PRED_PREFIX)
    obj = _unpack(body, max_bytes)
    session, seq = _header(obj, topic_session)
    ts = [_ns(obj, k, session, seq) for k in ("t_src_ns", "t_recv_ns", "t_pub_ns")]
    label = obj.get("label")
    probs = obj.get("probs")
    model = obj.get("model")
    late = obj.get("late")
    if not _is_int(label) or label < 0:
        raise BadMessage(BAD_FIELD, "label must be a non-negative integer", session, seq)
    if (not isinstance(probs, list) or not probs
            or not all(isinstance(x, (float, int)) and not isinstance(x, bool) for x in probs)):
        raise BadMessage(BAD_FIELD, "probs must be a non-empty array of numbers", session, seq)
    if label >= len(probs):
        raise BadMessage(BAD_FIELD, f"label {label} out of range for {len(probs)} probs", session, seq)
    if not isinstance(model, str) or not isinstance(late, bool):
        raise BadMessage(BAD_FIELD, "model must be a string and late a boolean", session, seq)
    skipped = obj.get("skipped", 0)
    if not _is_int(skipped) or not 0 <= skipped <= _INT64_MAX:
        raise BadMessage(BAD_FIELD, "skipped must be a non-negative integer", session, seq)
    return Prediction(session, seq, ts[0], ts[1], ts[2], label, tuple(float(x) for x in probs),
                      model, late, int(skipped), _run(obj, session, seq))


# ----------------------------------------------------------------------------- errors
def encode_error(session: str | None, seq: int | None, reason: str, detail: str = "") -> list[bytes]:
    name = session if isinstance(session, str) and _SESSION_RE.fullmatch(session) else UNKNOWN_SESSION
    body = {"v": VERSION, "session": name, "seq": seq, "reason": reason,
            "detail": detail[:MAX_DETAIL_CHARS]}
    return [topic(ERROR_PREFIX, name), _pack(body)]


def decode_error(parts: Sequence[bytes], max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> ErrorReport:
    topic_b, body = _parts(parts)
    name = bytes(topic_b[len(ERROR_PREFIX):]).decode("ascii", "replace") if bytes(topic_b).startswith(ERROR_PREFIX) else None
    if name is None or not (name == UNKNOWN_SESSION or _SESSION_RE.fullmatch(name)):
        raise BadMessage(MALFORMED, "topic must be error.<session>")
    obj = _unpack(body, max_bytes)
    if obj.get("v") != VERSION or obj.get("session") != name:
        raise BadMessage(BAD_FIELD, "v or session mismatch in error report", name)
    seq = obj.get("seq")
    if seq is not None and not _is_int(seq):
        raise BadMessage(BAD_FIELD, "seq must be an integer or nil", name)
    reason, detail = obj.get("reason"), obj.get("detail", "")
    if not isinstance(reason, str) or not isinstance(detail, str):
        raise BadMessage(BAD_FIELD, "reason and detail must be strings", name, seq)
    return ErrorReport(name, seq, reason, detail)


# ----------------------------------------------------------------------------- end of stream
def encode_end(session: str, seq: int, frames: int, t_src_ns: int | None = None,
               run: int | None = None) -> list[bytes]:
    check_session_name(session)
    body = {"v": VERSION, "session": session, "seq": int(seq),
            "t_src_ns": time.time_ns() if t_src_ns is None else int(t_src_ns), "frames": int(frames)}
    if run is not None:
        body["run"] = int(run)
    return [topic(END_PREFIX, session), _pack(body)]


def decode_end(parts: Sequence[bytes], max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> EndOfStream:
    topic_b, body = _parts(parts)
    topic_session = _session_from_topic(topic_b, END_PREFIX)
    obj = _unpack(body, max_bytes)
    session, seq = _header(obj, topic_session)
    t_src = _ns(obj, "t_src_ns", session, seq)
    frames = obj.get("frames")
    if not _is_int(frames) or frames < 0:
        raise BadMessage(BAD_FIELD, "frames must be a non-negative integer", session, seq)
    return EndOfStream(session, seq, t_src, frames, _run(obj, session, seq))


# ----------------------------------------------------------------------------- hello
def encode_hello(h: Hello) -> list[bytes]:
    body = {"v": VERSION, "model": h.model, "engine": h.engine, "n_inputs": int(h.n_inputs),
            "labels": list(h.labels), "deadline_ns": int(h.deadline_ns)}
    return [HELLO_TOPIC, _pack(body)]


def decode_hello(parts: Sequence[bytes], max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Hello:
    topic_b, body = _parts(parts)
    if bytes(topic_b) != HELLO_TOPIC:
        raise BadMessage(MALFORMED, "topic must be 'hello'")
    obj = _unpack(body, max_bytes)
    if obj.get("v") != VERSION:
        raise BadMessage(BAD_VERSION, f"hello v={obj.get('v')!r}")
    try:
        labels = tuple(str(x) for x in obj["labels"])
        return Hello(str(obj["model"]), str(obj["engine"]), int(obj["n_inputs"]), labels,
                     int(obj["deadline_ns"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadMessage(BAD_FIELD, f"hello: {exc}") from None


def decode_message(parts: Sequence[bytes], n_inputs: int | None = None,
                   max_bytes: int = DEFAULT_MAX_BODY_BYTES
                   ) -> Frame | Prediction | ErrorReport | EndOfStream | Hello:
    """Decode any v1 message by its topic."""
    if len(parts) != 2:
        raise BadMessage(MALFORMED, f"expected 2 message parts [topic, body], got {len(parts)}")
    t = parts[0]
    if type(t) is not bytes:
        t = bytes(t)
    if t.startswith(PRED_PREFIX):  # the common case for clients first
        return decode_prediction(parts, max_bytes)
    if t.startswith(FRAME_PREFIX):
        return decode_frame(parts, n_inputs, max_bytes)
    if t.startswith(ERROR_PREFIX):
        return decode_error(parts, max_bytes)
    if t.startswith(END_PREFIX):
        return decode_end(parts, max_bytes)
    if t == HELLO_TOPIC:
        return decode_hello(parts, max_bytes)
    raise BadMessage(MALFORMED, f"unknown topic {t[:40]!r}")
