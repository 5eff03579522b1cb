"""The service's per-frame decisions, pure: no sockets, no clock, no metrics.

Given a decoded frame's header (session, seq, t_src_ns), the time it was received and the
per-session sequence state, `SessionTable.admit` decides what becomes of it:

    ANSWER             predict and publish
    STALE              older than the deadline on arrival: dropped, reported on error.<s>
    SEQ_DUPLICATE      seq equal to the session's last accepted seq: rejected, reported
    SEQ_DECREASING     seq lower than the last accepted seq: rejected, reported
    TOO_MANY_SESSIONS  a new session beyond the cap: rejected, reported

and how many frames the seq gap says never arrived (`lost`, counted as seq_gap). The
sequence check comes first: a stale frame still advances its session's seq. An
end-of-stream resets its session (`end`), so a new stream may start at any seq.
`is_late` says whether a prediction missed the deadline (published, flagged `late`).
Under the `latest` policy, `conflate` picks which frames of a drained batch to answer.
The reasons are protocol wire values (neurogrs.stream.messages).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

from neurogrs.errors import ConfigError
from neurogrs.stream.protocol import SEQ_DECREASING, SEQ_DUPLICATE, STALE, TOO_MANY_SESSIONS

__all__ = ["POLICIES", "LATEST", "ALL", "ANSWER", "Admission", "SessionTable", "is_stale",
           "is_late", "conflate"]

LATEST = "latest"  # when behind, answer only the newest frame of each session
ALL = "all"  # answer every frame, in order
POLICIES = (LATEST, ALL)
ANSWER = "answer"


class Admission(NamedTuple):
    verdict: str  # ANSWER, STALE, SEQ_DUPLICATE, SEQ_DECREASING or TOO_MANY_SESSIONS
    lost: int = 0  # frames missing just before this one (seq gap), whatever the verdict
    detail: str = ""  # human-readable, for the error report (empty for ANSWER)
    new_session: bool = False  # the frame opened a session (the table grew)


_ANSWERED = Admission(ANSWER)


def is_stale(t_src_ns: int, t_recv_ns: int, deadline_ns: int) -> bool:
    """The frame was older than the deadline when it arrived."""
    return t_recv_ns - t_src_ns > deadline_ns


def is_late(t_src_ns: int, t_pub_ns: int, deadline_ns: int) -> bool:
    """The prediction was published after the deadline."""
    return t_pub_ns - t_src_ns > deadline_ns


class SessionTable:
    """The last accepted seq of each live session, at most `max_sessions` of them."""

    def __init__(self, max_sessions: int) -> None:
        if not isinstance(max_sessions, int) or max_sessions < 1:
            raise ConfigError(f"max_sessions must be an integer >= 1, got {max_sessions!r}")
        self.max_sessions = max_sessions
        self._last: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._last)

    def last_seq(self, session: str) -> int | None:
        return self._last.get(session)

    def admit(self, session: str, seq: int, t_src_ns: int, t_recv_ns: int,
              deadline_ns: int) -> Admission:
        last = self._last.get(session)
        new = last is None
        lost = 0
        if new:
            if len(self._last) >= self.max_sessions:
                return Admission(TOO_MANY_SESSIONS, 0,
                                 f"already tracking {self.max_sessions} sessions")
        elif seq != last + 1:
            if seq == last:
                return Admission(SEQ_DUPLICATE, 0, f"seq {seq} already received")
            if seq < last:
                return Admission(SEQ_DECREASING, 0, f"seq {seq} after {last}")
            lost = seq - last - 1
        self._last[session] = seq
        if t_recv_ns - t_src_ns > deadline_ns:  # is_stale, inlined: once per frame
            return Admission(STALE, lost, f"arrived {(t_recv_ns - t_src_ns) / 1e6:.3f} ms after "
                                          f"t_src, deadline {deadline_ns / 1e6:g} ms", new)
        return Admission(ANSWER, lost, "", new) if lost or new else _ANSWERED

    def end(self, session: str) -> bool:
        """End of `session`'s stream: forget its seq. True if it was live."""
        return self._last.pop(session, None) is not None


def conflate(batch: Sequence[tuple[str, bool]]) -> dict[int, int]:
    """Which frames of a drained batch the `latest` policy answers.

    `batch` holds (session, is_end) per admitted message, in arrival order. Returns
    {index: skipped} for the frames to answer: the newest frame of each session before
    that session's next end-of-stream (or the end of the batch), with the number of its
    session's frames skipped for it. Every other frame is conflated; ends are always
    forwarded (they are never in the result), so a stream's frames are accounted for
    before its end: answered, or counted in the `skipped` of an answer."""
    answers: dict[int, int] = {}
    pending: dict[str, tuple[int, int]] = {}  # session -> (newest frame so far, skipped)
    for i, (session, is_end) in enumerate(batch):
        if is_end:
            newest = pending.pop(session, None)
            if newest is not None:
                answers[newest[0]] = newest[1]
        else:
            before = pending.get(session)
            pending[session] = (i, 0 if before is None else before[1] + 1)
    for i, skipped in pending.values():
        answers[i] = skipped
    return answers
