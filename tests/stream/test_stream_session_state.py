"""Per-session engine state (stream/session_state.py) and the policy helpers the service
uses for it, without sockets."""
from __future__ import annotations

import numpy as np

from neurogrs.artifact import save_artifact
from neurogrs.bench.temporal_cost import variants
from neurogrs.inference import load_engine
from neurogrs.spec import forward
from neurogrs.stream import policy
from neurogrs.stream.session_state import SessionStates


def test_states_per_session_restart_drop_and_keep_only(tmp_path, engine):
    spec = variants(20)["nn1 + traces m=3 + filter"]
    eng = load_engine(save_artifact(spec, tmp_path / "a"), "numpy")
    assert SessionStates.of(engine) is None  # a stateless model: no table
    states = SessionStates.of(eng)
    x = np.random.default_rng(0).normal(size=(12, 20)).astype(np.float32)
    ref = forward(spec, x)
    got = [states.predict("a", f) for f in x[:6]]
    got_b = states.predict("b", x[6])  # another session: its own fresh state
    got += [states.predict("a", f) for f in x[6:]]
    np.testing.assert_allclose(np.stack(got), ref, atol=1e-6)
    np.testing.assert_allclose(got_b, forward(spec, x[6:7])[0], atol=1e-6)
    # a restart resets before the frame; a dropped session starts afresh
    np.testing.assert_allclose(states.predict("a", x[3], restarted=True),
                               forward(spec, x[3:4])[0], atol=1e-6)
    states.drop("a")
    np.testing.assert_allclose(states.predict("a", x[5]), forward(spec, x[5:6])[0], atol=1e-6)
    assert len(states) == 2 and states.keep_only(lambda s: s == "b") == 1 and len(states) == 1


def test_conflator_replace_returns_the_superseded_frame():
    c = policy.Conflator()
    assert c.replace("s", "f0") is None
    assert c.replace("s", "f1") == "f0"
    assert c.add("s", "f2") is True
    assert c.take("s") == ("f2", 2)


def test_session_clocks_bounded_and_correct():
    clocks = policy.SessionClocks(cap=2)
    est = None
    for k in range(16):  # a source 200 ms behind: one full window gives an estimate
        est = clocks.observe("a", 1_000_000_000 + k, 1_200_000_000 + k) or est
    assert est == -200_000_000 and clocks.correction("a") == -200_000_000
    assert clocks.correction("unknown") == 0
    clocks.observe("b", 0, 0)
    clocks.observe("c", 0, 0)  # over the cap: the oldest ("a") is forgotten
    assert clocks.correction("a") == 0
    table = policy.SessionTable(4)
    table.admit("x", 0, 0, 0, 10**9)
    assert "x" in table and "y" not in table
