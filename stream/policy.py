"""The service's per-frame decisions, pure: no sockets, no clock, no metrics.

Given a decoded frame's header (session, seq, t_src_ns, run), the time it was received and
the per-session state, `SessionTable.admit` decides what becomes of it:

    ANSWER             predict and publish
    STALE              older than the deadline on arrival: dropped, reported on error.<s>
    SEQ_DUPLICATE      seq equal to the session's last accepted seq: rejected, reported
    SEQ_DECREASING     seq lower than the last accepted seq: rejected, reported
    TOO_MANY_SESSIONS  a new session beyond the cap (after expiring idle ones): rejected

and how many frames the seq gap says never arrived (`lost`, counted as seq_gap). The
sequence check comes first: a stale frame still advances its session's seq. An
end-of-stream resets its session (`end`), so a new stream may start at any seq; so does a
frame whose `run` differs from the session's (a restarted source: `restarted`). Sessions
idle longer than `idle_ns` expire (`expire`), so the cap never locks new ones out for good.
`is_late` says whether a prediction missed the deadline (published, flagged `late`).
Under the `latest` policy, `Conflator` (and `conflate`, its batch form) picks which frames
of a drained batch to answer. `ClockOffset` estimates a source's clock offset from the
frames' timestamps. The reasons are protocol wire values (neurogrs.stream.messages).
"""
from __future__ import annotations

from collections import OrderedDict, deque
from statistics import median
from typing import Any, NamedTuple, Sequence

from neurogrs.errors import ConfigError
from neurogrs.stream.protocol import SEQ_DECREASING, SEQ_DUPLICATE, STALE, TOO_MANY_SESSIONS

__all__ = ["POLICIES", "LATEST", "ALL", "ANSWER", "Admission", "SessionTable", "is_stale",
           "is_late", "conflate", "Conflator", "ClockOffset", "SessionClocks", "SKEW_TOLERANCE_NS",
           "CLOCKS", "CLOCK_AUTO", "CLOCK_SOURCE"]

LATEST = "latest"  # when behind, answer only the newest frame of each session
ALL = "all"  # answer every frame, in order
POLICIES = (LATEST, ALL)
ANSWER = "answer"
# how t_src_ns is judged for staleness and lateness: "auto" corrects it by the source's
# estimated clock offset once that exceeds SKEW_TOLERANCE_NS; "source" takes it as it is
CLOCK_AUTO = "auto"
CLOCK_SOURCE = "source"
CLOCKS = (CLOCK_AUTO, CLOCK_SOURCE)
SKEW_TOLERANCE_NS = 5_000_000  # offsets within +-5 ms count as synchronised clocks


class Admission(NamedTuple):
    verdict: str  # ANSWER, STALE, SEQ_DUPLICATE, SEQ_DECREASING or TOO_MANY_SESSIONS
    lost: int = 0  # frames missing just before this one (seq gap), whatever the verdict
    detail: str = ""  # human-readable, for the error report (empty for ANSWER)
    new_session: bool = False  # the frame opened a session (the table grew)
    restarted: bool = False  # the frame's run differs from the session's: a new run began


_ANSWERED = Admission(ANSWER)


def is_stale(t_src_ns: int, t_recv_ns: int, deadline_ns: int) -> bool:
    """The frame was older than the deadline when it arrived."""
    return t_recv_ns - t_src_ns > deadline_ns


def is_late(t_src_ns: int, t_pub_ns: int, deadline_ns: int) -> bool:
    """The prediction was published after the deadline."""
    return t_pub_ns - t_src_ns > deadline_ns


class _State:
    __slots__ = ("last", "run", "seen")

    def __init__(self, last: int, run: int | None, seen: int) -> None:
        self.last, self.run, self.seen = last, run, seen


class SessionTable:
    """Per live session: the last accepted seq, the run, when it was last seen (the
    service's receive clock). At most `max_sessions`; with `idle_ns`, a session not seen
    for that long expires (the table is kept in least-recently-seen order, so expiring
    costs only the sessions that expire)."""

    def __init__(self, max_sessions: int, idle_ns: int | None = None) -> None:
        if not isinstance(max_sessions, int) or max_sessions < 1:
            raise ConfigError(f"max_sessions must be an integer >= 1, got {max_sessions!r}")
        if idle_ns is not None and (not isinstance(idle_ns, int) or idle_ns <= 0):
            raise ConfigError(f"idle_ns must be a positive integer or None, got {idle_ns!r}")
        self.max_sessions = max_sessions
        self.idle_ns = idle_ns
        self.expired = 0  # sessions expired so far
        self._s: OrderedDict[str, _State] = OrderedDict()

    def __len__(self) -> int:
        return len(self._s)

    def __contains__(self, session: str) -> bool:
        return session in self._s

    def last_seq(self, session: str) -> int | None:
        st = self._s.get(session)
        return None if st is None else st.last

    def admit(self, session: str, seq: int, t_src_ns: int, t_recv_ns: int,
              deadline_ns: int, run: int | None = None,
              seen_ns: int | None = None) -> Admission:
        """`seen_ns`: when the frame arrived on the clock idle time is measured with (the
        service passes a monotonic clock, so a wall clock stepped back does not hold
        sessions for the length of the step; `expire` then takes the same clock);
        default t_recv_ns."""
        st = self._s.get(session)
        restarted = st is not None and run is not None and run != st.run
        lost = 0
        seen = t_recv_ns if seen_ns is None else seen_ns
        if st is None or restarted:
            if st is None and len(self._s) >= self.max_sessions and not self.expire(seen):
                return Admission(TOO_MANY_SESSIONS, 0,
                                 f"already tracking {self.max_sessions} sessions")
            self._s[session] = st = _State(seq, run, seen)
            self._s.move_to_end(session)
            new = True
        else:
            new = False
            st.seen = seen
            self._s.move_to_end(session)
            last = st.last
            if seq != last + 1:
                if seq == last:
                    return Admission(SEQ_DUPLICATE, 0, f"seq {seq} already received")
                if seq < last:
                    return Admission(SEQ_DECREASING, 0, f"seq {seq} after {last}")
                lost = seq - last - 1
            st.last = seq
        if t_recv_ns - t_src_ns > deadline_ns:  # is_stale, inlined: once per frame
            return Admission(STALE, lost, f"arrived {(t_recv_ns - t_src_ns) / 1e6:.3f} ms after "
                                          f"t_src, deadline {deadline_ns / 1e6:g} ms",
                             new and not restarted, restarted)
        if lost or new:
            return Admission(ANSWER, lost, "", new and not restarted, restarted)
        return _ANSWERED

    def refused(self, session: str, seq: int) -> None:
        """A frame of `session` arrived with `seq` but was refused for its content (NaN,
        wrong shape...). When it is the next frame expected, its seq is used up, so the
        frame after it is no gap; any other seq is not trusted (a refused frame's fields may
        be wrong) and changes nothing."""
        st = self._s.get(session)
        if st is not None and seq == st.last + 1:
            st.last = seq

    def end(self, session: str) -> bool:
        """End of `session`'s stream: forget its seq. True if it was live."""
        return self._s.pop(session, None) is not None

    def expire(self, now_ns: int) -> list[str]:
        """Forget the sessions not seen for `idle_ns` (none without `idle_ns`); `now_ns`
        on the clock `admit` was given (`seen_ns`, else t_recv_ns)."""
        gone: list[str] = []
        if self.idle_ns is None:
            return gone
        while self._s:
            name, st = next(iter(self._s.items()))
            if now_ns - st.seen <= self.idle_ns:
                break
            del self._s[name]
            gone.append(name)
        self.expired += len(gone)
        return gone


class Conflator:
    """The `latest` policy, one message at a time: holds only the newest frame of each
    session (so a drain batch holds at most one frame per session, whatever its length).

    add(session, item) -> True when it superseded (conflated) an older frame of the session;
    replace(session, item) -> the superseded item, or None;
    take(session) -> (item, skipped) | None: the session's newest frame, to answer now (at
        its end-of-stream or a restart, so a stream's frames are accounted for before it ends);
    flush() -> [(item, skipped)]: every pending newest frame, oldest first, to answer at the
        end of the batch."""

    def __init__(self) -> None:
        self._pending: dict[str, list] = {}

    def add(self, session: str, item: Any) -> bool:
        return self.replace(session, item) is not None

    def replace(self, session: str, item: Any) -> Any:
        """add(), returning the superseded item (None if there was none): a stateful model
        still feeds it to the session's state (stream/session_state.py)."""
        before = self._pending.pop(session, None)  # re-inserted: dict order = newest arrival
        self._pending[session] = [item, 0 if before is None else before[1] + 1]
        return None if before is None else before[0]

    def take(self, session: str) -> tuple[Any, int] | None:
        p = self._pending.pop(session, None)
        return None if p is None else (p[0], p[1])

    def flush(self) -> list[tuple[Any, int]]:
        out = [(p[0], p[1]) for p in self._pending.values()]
        self._pending.clear()
        return out


def conflate(batch: Sequence[tuple[str, bool]]) -> dict[int, int]:
    """Which frames of a drained batch the `latest` policy answers (`Conflator` on a list).

    `batch` holds (session, is_end) per admitted message, in arrival order. Returns
    {index: skipped} for the frames to answer: the newest frame of each session before
    that session's next end-of-stream (or the end of the batch), with the number of its
    session's frames skipped for it. Every other frame is conflated; ends are always
    forwarded (they are never in the result), so a stream's frames are accounted for
    before its end: answered, or counted in the `skipped` of an answer."""
    c = Conflator()
    answers: dict[int, int] = {}
    for i, (session, is_end) in enumerate(batch):
        if is_end:
            newest = c.take(session)
            if newest is not None:
                answers[newest[0]] = newest[1]
        else:
            c.add(session, i)
    for i, skipped in c.flush():
        answers[i] = skipped
    return answers


class ClockOffset:
    """Estimates a source's clock minus the service's clock from (t_src, t_recv) pairs.

    Each sample t_src - t_recv is the offset minus the frame's transit (queueing
    included), so the largest sample of a window of `window` frames is the best one of
    that window; the estimate is the median of the last `history` window maxima (one
    frame with a wild timestamp moves it not at all, a clock step within a few windows).
    Feed it frames that found the service caught up (the last of a drain), so a backlog
    in the service's own queue does not read as a slow clock. `estimate` is None until a
    first window is complete."""

    __slots__ = ("window", "_n", "_best", "_maxima", "estimate")

    def __init__(self, window: int = 16, history: int = 5) -> None:
        if window < 1 or history < 1:
            raise ConfigError(f"window and history must be >= 1, got {window}, {history}")
        self.window = window
        self._n = 0
        self._best = 0
        self._maxima: deque[int] = deque(maxlen=history)
        self.estimate: int | None = None

    def observe(self, t_src_ns: int, t_recv_ns: int) -> int | None:
        d = t_src_ns - t_recv_ns
        if self._n == 0 or d > self._best:
            self._best = d
        self._n += 1
        if self._n == self.window:
            self._maxima.append(self._best)
            self._n = 0
            self.estimate = int(median(self._maxima))
        return self.estimate

    def correction(self, tolerance_ns: int = SKEW_TOLERANCE_NS) -> int:
        """What to subtract from t_src to put it on the service's clock: the estimate once
        it exceeds the tolerance (a skewed clock), else 0 (clocks in sync: no change)."""
        e = self.estimate
        return e if e is not None and abs(e) > tolerance_ns else 0


class SessionClocks:
    """A ClockOffset per session, at most `cap` of them (the oldest forgotten first)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._c: dict[str, ClockOffset] = {}

    def observe(self, session: str, t_src_ns: int, t_recv_ns: int) -> int | None:
        """Feed one sample of `session`; its estimate when this sample changed it."""
        clock = self._c.get(session)
        if clock is None:
            if len(self._c) >= self.cap:
                self._c.pop(next(iter(self._c)))
            clock = self._c[session] = ClockOffset()
        before = clock.estimate
        est = clock.observe(t_src_ns, t_recv_ns)
        return est if est is not None and est != before else None

    def correction(self, session: str) -> int:
        """ClockOffset.correction() of `session` (0 when it has no estimate yet)."""
        clock = self._c.get(session)
        return 0 if clock is None else clock.correction()

    def forget(self, session: str) -> None:
        self._c.pop(session, None)
