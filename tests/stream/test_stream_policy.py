"""The service's deadline / sequence / conflation policy, without sockets: tables of frames
in, decisions out; hypothesis for the accounting invariants."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurogrs.errors import ConfigError
from neurogrs.stream import policy
from neurogrs.stream import protocol as P
from neurogrs.stream.policy import ANSWER, Admission, SessionTable, conflate, is_late, is_stale

MS = 1_000_000
DEADLINE = 100 * MS
T0 = 1_700_000_000 * 10**9


def _run(frames, max_sessions=64, ends=()):
    """Admit (session, seq, age_ms) frames in order, ending the sessions listed in `ends`
    (by position) first; returns [(verdict, lost)]."""
    table = SessionTable(max_sessions)
    out = []
    for i, (session, seq, age_ms) in enumerate(frames):
        for pos, ended in ends:
            if pos == i:
                table.end(ended)
        a = table.admit(session, seq, T0, T0 + int(age_ms * MS), DEADLINE)
        out.append((a.verdict, a.lost))
    return out


A, STALE, DUP, DEC, CAP = ANSWER, P.STALE, P.SEQ_DUPLICATE, P.SEQ_DECREASING, P.TOO_MANY_SESSIONS

SEQ_TABLE = {
    # name: (frames [(session, seq, age_ms)], expected [(verdict, lost)])
    "in order": ([("a", 0, 1), ("a", 1, 1), ("a", 2, 1)], [(A, 0), (A, 0), (A, 0)]),
    "first frame may start anywhere": ([("a", 41, 1), ("a", 42, 1)], [(A, 0), (A, 0)]),
    "gap counts the missing frames": ([("a", 0, 1), ("a", 1, 1), ("a", 5, 1)], [(A, 0), (A, 0), (A, 3)]),
    "duplicate rejected": ([("a", 0, 1), ("a", 0, 1), ("a", 1, 1)], [(A, 0), (DUP, 0), (A, 0)]),
    "decreasing rejected, state kept": ([("a", 5, 1), ("a", 3, 1), ("a", 6, 1)],
                                        [(A, 0), (DEC, 0), (A, 0)]),
    "sessions are independent": ([("a", 0, 1), ("b", 7, 1), ("a", 1, 1), ("b", 9, 1)],
                                 [(A, 0), (A, 0), (A, 0), (A, 1)]),
    "stale dropped": ([("a", 0, 100.001)], [(STALE, 0)]),
    "exactly the deadline is not stale": ([("a", 0, 100)], [(A, 0)]),
    "stale still advances seq": ([("a", 0, 1), ("a", 1, 500), ("a", 1, 1), ("a", 2, 1)],
                                 [(A, 0), (STALE, 0), (DUP, 0), (A, 0)]),
    "a gap before a stale frame is counted": ([("a", 0, 1), ("a", 4, 500)], [(A, 0), (STALE, 3)]),
    "future t_src is not stale": ([("a", 0, -50)], [(A, 0)]),
}


@pytest.mark.parametrize("name", sorted(SEQ_TABLE))
def test_admission_table(name):
    frames, expected = SEQ_TABLE[name]
    assert _run(frames) == expected


def test_session_cap_rejects_new_sessions_only():
    frames = [("a", 0, 1), ("b", 0, 1), ("c", 0, 1), ("a", 1, 1), ("c", 1, 1)]
    assert _run(frames, max_sessions=2) == [(A, 0), (A, 0), (CAP, 0), (A, 0), (CAP, 0)]


def test_end_of_stream_resets_a_session_and_frees_its_slot():
    frames = [("a", 7, 1), ("a", 0, 1), ("b", 0, 1)]
    # ending a before its second frame lets seq start over; a is live again after it, so
    # b does not fit under a cap of 1 unless a ends once more
    assert _run(frames, max_sessions=1, ends=[(1, "a")]) == [(A, 0), (A, 0), (CAP, 0)]
    assert _run(frames, max_sessions=1, ends=[(1, "a"), (2, "a")]) == [(A, 0), (A, 0), (A, 0)]
    table = SessionTable(4)
    assert table.end("never-seen") is False


def test_rejections_explain_themselves():
    table = SessionTable(1)
    table.admit("a", 5, T0, T0, DEADLINE)
    assert table.admit("a", 3, T0, T0, DEADLINE) == Admission(DEC, 0, "seq 3 after 5")
    assert table.admit("a", 5, T0, T0, DEADLINE).detail == "seq 5 already received"
    assert table.admit("b", 0, T0, T0, DEADLINE).detail == "already tracking 1 sessions"
    stale = table.admit("a", 6, T0, T0 + 250 * MS, DEADLINE)
    assert stale == Admission(STALE, 0, "arrived 250.000 ms after t_src, deadline 100 ms")
    assert table.admit("a", 7, T0, T0, DEADLINE) == Admission(ANSWER)
    assert len(table) == 1 and table.last_seq("a") == 7


@pytest.mark.parametrize("t_src,t,deadline,expected", [
    (0, 100, 100, False), (0, 101, 100, True), (100, 0, 10, False), (5, 5, 0, False)])
def test_stale_and_late_share_the_deadline_rule(t_src, t, deadline, expected):
    assert is_stale(t_src, t, deadline) is expected
    assert is_late(t_src, t, deadline) is expected


def test_session_table_validates():
    with pytest.raises(ConfigError, match="max_sessions"):
        SessionTable(0)
    assert policy.POLICIES == ("latest", "all")


# ------------------------------------------------------------------ conflation (latest)
F, E = False, True
CONFLATE_TABLE = {
    # name: (batch [(session, is_end)], expected {index answered: skipped})
    "empty": ([], {}),
    "one frame": ([("a", F)], {0: 0}),
    "newest of one session": ([("a", F), ("a", F), ("a", F)], {2: 2}),
    "newest of each session": ([("a", F), ("b", F), ("a", F), ("b", F), ("b", F)], {2: 1, 4: 2}),
    "an end closes its stream": ([("a", F), ("a", F), ("a", E), ("a", F), ("a", F)], {1: 1, 4: 1}),
    "an end of another session changes nothing": ([("a", F), ("b", E), ("a", F)], {2: 1}),
    "an end alone": ([("a", E)], {}),
    "end right after one frame": ([("a", F), ("a", E), ("a", F)], {0: 0, 2: 0}),
}


@pytest.mark.parametrize("name", sorted(CONFLATE_TABLE))
def test_conflate_table(name):
    batch, expected = CONFLATE_TABLE[name]
    assert conflate(batch) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=40))
def test_conflate_accounts_for_every_frame_before_its_end(batch):
    answers = conflate(batch)
    frames = [i for i, (_, is_end) in enumerate(batch) if not is_end]
    assert set(answers) <= set(frames)
    # answered + skipped = every frame of the batch
    assert len(answers) + sum(answers.values()) == len(frames)
    for session in "abc":
        # split the session's messages into streams at its ends: each stream that has
        # frames gets exactly one answer, its newest frame, skipping all the others
        stream: list[int] = []
        for i, (s, is_end) in enumerate(batch + [(session, True)]):
            if s != session:
                continue
            if is_end:
                if stream:
                    assert answers.get(stream[-1]) == len(stream) - 1
                    assert not set(stream[:-1]) & set(answers)
                stream = []
            else:
                stream.append(i)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 12),
                          st.integers(-5, 300)), max_size=40))
def test_every_admitted_frame_gets_exactly_one_verdict_and_seq_stays_increasing(frames):
    table = SessionTable(64)
    accepted: dict[str, list[int]] = {}
    for session, seq, age_ms in frames:
        a = table.admit(session, seq, T0, T0 + age_ms * MS, DEADLINE)
        assert a.verdict in (ANSWER, STALE, DUP, DEC)
        assert a.lost >= 0 and (a.lost == 0 or a.verdict in (ANSWER, STALE))
        if a.verdict in (ANSWER, STALE):  # accepted into the sequence
            seqs = accepted.setdefault(session, [])
            assert not seqs or (seq > seqs[-1] and a.lost == seq - seqs[-1] - 1)
            seqs.append(seq)
            assert (a.verdict == STALE) == (age_ms > 100)


# ------------------------------------------------------------------ restarts, expiry (issue 9)
def test_a_new_run_restarts_the_session_at_once():
    table = SessionTable(4)
    for seq in range(1000, 1003):
        assert table.admit("a", seq, T0, T0, DEADLINE, run=1).verdict == ANSWER
    # the source crashed and came back from seq 0 with a new run: served, not "decreasing"
    a = table.admit("a", 0, T0, T0, DEADLINE, run=2)
    assert (a.verdict, a.lost, a.restarted, a.new_session) == (ANSWER, 0, True, False)
    assert table.admit("a", 1, T0, T0, DEADLINE, run=2) == Admission(ANSWER)
    assert table.admit("a", 1, T0, T0, DEADLINE, run=2).verdict == DUP  # same run: v1 rules
    # frames without a run keep v1 behaviour, within the current run
    assert table.admit("a", 0, T0, T0, DEADLINE).verdict == DEC
    assert len(table) == 1 and table.last_seq("a") == 1


def test_without_runs_a_restart_is_still_decreasing():
    table = SessionTable(4)
    table.admit("a", 1000, T0, T0, DEADLINE)
    assert table.admit("a", 0, T0, T0, DEADLINE).verdict == DEC


def test_idle_sessions_expire_and_free_the_cap():
    table = SessionTable(2, idle_ns=60 * 10**9)
    assert table.admit("a", 0, T0, T0, DEADLINE).verdict == ANSWER
    t = T0 + 10 * 10**9
    assert table.admit("b", 0, t, t, DEADLINE).verdict == ANSWER
    # c arrives while both are fresh: refused; once a is idle > 60 s, it takes a's slot
    t = T0 + 30 * 10**9
    assert table.admit("c", 0, t, t, DEADLINE).verdict == CAP
    t = T0 + 61 * 10**9
    a = table.admit("c", 0, t - 10 * MS, t, DEADLINE)
    assert (a.verdict, a.new_session) == (ANSWER, True)
    assert table.last_seq("a") is None and table.last_seq("b") == 0
    # b was seen at +10 s: expires after +70 s; c stays (seen at +61 s)
    assert table.expire(T0 + 70 * 10**9) == []
    assert table.expire(T0 + 70 * 10**9 + 1) == ["b"]
    assert len(table) == 1


def test_expiry_follows_the_last_time_seen_not_the_first():
    table = SessionTable(8, idle_ns=100)
    table.admit("a", 0, 0, 0, DEADLINE)
    table.admit("b", 0, 0, 50, DEADLINE)
    table.admit("a", 1, 0, 120, DEADLINE)  # a seen again: now b is the oldest
    assert table.expire(151) == ["b"]
    assert table.expire(221) == ["a"]


def test_no_idle_timeout_means_no_expiry():
    table = SessionTable(1)
    table.admit("a", 0, 0, 0, DEADLINE)
    assert table.expire(10**18) == [] and len(table) == 1
    with pytest.raises(ConfigError, match="idle_ns"):
        SessionTable(1, idle_ns=0)


# ------------------------------------------------------------------ streaming conflation
def test_conflator_holds_one_frame_per_session():
    c = policy.Conflator()
    assert [c.add("a", i) for i in range(5)] == [False, True, True, True, True]
    c.add("b", "b0")
    assert c.take("a") == (4, 4) and c.take("a") is None
    c.add("a", 9)
    assert c.flush() == [("b0", 0), (9, 0)] and c.flush() == []


# ------------------------------------------------------------------ clock offset
def test_clock_offset_is_the_median_of_window_maxima():
    clock = policy.ClockOffset(window=4, history=3)
    for i in range(3):
        assert clock.observe(T0 - 150 * MS, T0) is None
    # transit adds to the receive time: the least-delayed frame of a window is the estimate
    assert clock.observe(T0 - 150 * MS, T0 + 2 * MS) == -150 * MS
    for lag in (5, 1, 0, 9, 20, 30, 40, 50):  # one window with a wild frame from the future
        clock.observe(T0 - 150 * MS + (10**10 if lag == 9 else 0), T0 + lag * MS)
    assert clock.estimate == -150 * MS  # window maxima -150 ms, +9.84 s, -170 ms: median
    assert clock.correction() == clock.estimate


def test_clock_in_sync_means_no_correction():
    clock = policy.ClockOffset(window=2)
    assert clock.correction() == 0
    clock.observe(T0 - 1 * MS, T0)
    clock.observe(T0 - 1 * MS, T0)
    assert clock.estimate == -MS and clock.correction() == 0  # within the 5 ms tolerance


def test_a_refused_next_frame_uses_up_its_seq():
    from neurogrs.stream.policy import SessionTable

    t = SessionTable(max_sessions=4)
    t.refused("s", 0)  # not tracked yet: its first valid frame starts it
    assert t.last_seq("s") is None
    t.admit("s", 0, 0, 0, 10**9)
    t.refused("s", 1)
    assert t.last_seq("s") == 1  # the next frame expected: used up
    t.refused("s", 100)
    assert t.last_seq("s") == 1  # a wild seq on a refused frame is not trusted
    assert t.admit("s", 2, 0, 0, 10**9).lost == 0
