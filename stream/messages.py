"""Protocol v1 declarations: version, topics, limits, reasons, message types, BadMessage.

Part of the wire format, with `neurogrs.stream.protocol` (the encoders and decoders),
which re-exports every name here: callers import `neurogrs.stream.protocol` only.
Specification: docs/protocol.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neurogrs.errors import ConfigError, ProtocolError

__all__ = [
    "VERSION", "DTYPE", "FRAME_PREFIX", "PRED_PREFIX", "ERROR_PREFIX", "END_PREFIX",
    "HELLO_TOPIC", "UNKNOWN_SESSION", "DEFAULT_MAX_BODY_BYTES", "MAX_INPUTS",
    "MAX_DETAIL_CHARS", "MALFORMED", "BAD_FIELD", "BAD_VERSION", "BAD_DTYPE", "BAD_SHAPE",
    "NON_FINITE", "OVERSIZED", "SEQ_DUPLICATE", "SEQ_DECREASING", "TOO_MANY_SESSIONS",
    "ENGINE_ERROR", "BAD_INPUT_REASONS", "STALE", "ERROR_REASONS", "CONFLATED", "SEQ_GAP",
    "BAD_INPUT", "DROP_REASONS", "UNKNOWN_TOPIC", "EXCLUDED_SESSION", "IGNORED_REASONS",
    "BadMessage", "Frame", "Prediction", "ErrorReport",
    "EndOfStream", "Hello", "check_session_name", "topic",
]

VERSION = 1
DTYPE = "<f4"
FRAME_PREFIX = b"frame."
PRED_PREFIX = b"pred."
ERROR_PREFIX = b"error."
END_PREFIX = b"end."
HELLO_TOPIC = b"hello"
UNKNOWN_SESSION = "_"  # session name used on error.<session> when it cannot be read
DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: a frame body larger than this is "oversized"
MAX_INPUTS = 1 << 18  # largest N a frame may declare
MAX_DETAIL_CHARS = 200
# used with fullmatch only: `$` would also match before a trailing newline ("m1\n")
_SESSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")
_INT64_MAX = (1 << 63) - 1

# reasons reported on error.<session> and counted in neurogrs_bad_input_total{kind}
MALFORMED = "malformed"  # wrong part count, bad topic, not msgpack / truncated, not a map
BAD_FIELD = "bad_field"  # a field missing or of the wrong type (or session != topic session)
BAD_VERSION = "bad_version"  # v is not a version this decoder speaks
BAD_DTYPE = "bad_dtype"  # dtype is not "<f4"
BAD_SHAPE = "bad_shape"  # shape is not [N] for the model's N, or does not match len(data)
NON_FINITE = "non_finite"  # NaN or +-Inf in data
OVERSIZED = "oversized"  # body larger than the configured limit
SEQ_DUPLICATE = "seq_duplicate"  # seq equal to the last accepted seq of the session
SEQ_DECREASING = "seq_decreasing"  # seq lower than the last accepted seq of the session
TOO_MANY_SESSIONS = "too_many_sessions"  # a new session beyond the service's session cap
ENGINE_ERROR = "engine_error"  # the engine refused a validated frame (should not happen)
BAD_INPUT_REASONS = (MALFORMED, BAD_FIELD, BAD_VERSION, BAD_DTYPE, BAD_SHAPE, NON_FINITE,
                     OVERSIZED, SEQ_DUPLICATE, SEQ_DECREASING, TOO_MANY_SESSIONS, ENGINE_ERROR)
STALE = "stale"  # a frame older than the deadline on arrival: reported, not answered
# every reason an error.<session> report may carry
ERROR_REASONS = BAD_INPUT_REASONS + (STALE,)
# why a frame got no prediction: neurogrs_frames_dropped_total{reason}; clients see
# conflated frames in a prediction's `skipped` and seq gaps as missing seq numbers
CONFLATED = "conflated"  # skipped under the `latest` policy for a newer frame
SEQ_GAP = "seq_gap"  # never reached the service (counted from the gap in seq)
BAD_INPUT = "bad_input"  # any of BAD_INPUT_REASONS
DROP_REASONS = (STALE, CONFLATED, SEQ_GAP, BAD_INPUT)
# messages the service's frame socket receives but that are not its business, dropped
# unanswered and unreported: neurogrs_messages_ignored_total{reason}
UNKNOWN_TOPIC = "unknown_topic"  # neither frame.<s> nor end.<s>
EXCLUDED_SESSION = "excluded_session"  # a session --session does not serve (prefix match)
IGNORED_REASONS = (UNKNOWN_TOPIC, EXCLUDED_SESSION)


class BadMessage(ProtocolError):
    """A message that does not follow protocol v1; `reason` is one of BAD_INPUT_REASONS."""

    def __init__(self, reason: str, detail: str, session: str | None = None,
                 seq: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail[:MAX_DETAIL_CHARS]
        self.session = session
        self.seq = seq


# ----------------------------------------------------------------------------- messages
class Frame(NamedTuple):  # a NamedTuple: built once per frame on the hot path (cheap)
    session: str
    seq: int
    t_src_ns: int
    data: np.ndarray  # float32 [N], read-only view on the received buffer
    run: int | None = None  # the source's run id (optional: a restart changes it)


class Prediction(NamedTuple):
    session: str
    seq: int
    t_src_ns: int
    t_recv_ns: int
    t_pub_ns: int
    label: int
    probs: tuple[float, ...]
    model: str
    late: bool
    skipped: int = 0  # frames of this session conflated (unanswered) since the last prediction
    run: int | None = None  # the frame's run, when it carried one


@dataclass(frozen=True)
class ErrorReport:
    session: str
    seq: int | None
    reason: str
    detail: str


@dataclass(frozen=True)
class EndOfStream:
    session: str
    seq: int  # the seq the next frame would have had
    t_src_ns: int
    frames: int  # frames the source sent in this stream
    run: int | None = None  # the run that ended, when the source names it


@dataclass(frozen=True)
class Hello:
    model: str
    engine: str
    n_inputs: int
    labels: tuple[str, ...]
    deadline_ns: int


# ----------------------------------------------------------------------------- names
def check_session_name(name: str) -> str:
    if not isinstance(name, str) or not _SESSION_RE.fullmatch(name):
        raise ConfigError(
            f"session name {name!r} must be 1-64 characters of [A-Za-z0-9_-], "
            "starting with a letter or digit"
        )
    return name


def topic(prefix: bytes, session: str) -> bytes:
    return prefix + session.encode("ascii")
