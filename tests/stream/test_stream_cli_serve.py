"""`neurogrs serve` / `replay` / `listen` as real subprocesses: startup time without
TensorFlow, SIGTERM clean shutdown (exit 0), fatal bind error (non-zero), end to end."""
from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
import zmq

from neurogrs.bench.process import EventProcess
from neurogrs.formats import save_session
from neurogrs.session import Session

pytestmark = pytest.mark.timeout(120)

# run the real CLI; at exit, report whether TensorFlow/Keras were ever imported
_WRAP = ("import atexit, sys; atexit.register(lambda: print('HEAVY=' + ','.join(sorted("
         "m for m in ('tensorflow', 'keras') if m in sys.modules)), file=sys.stderr, flush=True)); "
         "from neurogrs.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.fixture
def procs():
    started = []

    def spawn(*args):
        pr = EventProcess(["-c", _WRAP, *(str(a) for a in args)])
        started.append(pr)
        return pr

    yield spawn
    for pr in started:
        pr.kill()


SERVE = ["serve", None, "--engine", "numpy", "--frames", "@tcp://127.0.0.1:*",
         "--predictions", "@tcp://127.0.0.1:*", "--metrics-port", "0", "--policy", "all"]


def _serve_args(artifact_dir, *extra):
    a = list(SERVE)
    a[1] = artifact_dir
    return a + list(extra)


def test_serve_ready_fast_without_tensorflow_and_sigterm_exits_zero(procs, artifact_dir):
    srv = procs(*_serve_args(artifact_dir))
    ready = srv.event("ready")
    startup = time.perf_counter() - srv.t0
    assert startup < 2.0, f"ready after {startup:.2f} s"
    assert ready["metrics"].startswith("http://127.0.0.1:")
    srv.p.send_signal(signal.SIGTERM)
    assert srv.wait() == 0
    err = "".join(srv.err)
    assert "HEAVY=\n" in err, err[-2000:]
    stopped = [json.loads(x) for x in srv.err if x.startswith('{"event": "stopped"')]
    assert stopped and "frames_received" in stopped[0]


def test_sigint_also_clean(procs, artifact_dir):
    srv = procs(*_serve_args(artifact_dir))
    srv.event("ready")
    srv.p.send_signal(signal.SIGINT)
    assert srv.wait() == 0


def test_cannot_bind_is_fatal_nonzero(procs, artifact_dir):
    ctx = zmq.Context()
    try:
        taken = ctx.socket(zmq.SUB)
        taken.linger = 0
        taken.bind("tcp://127.0.0.1:*")
        ep = taken.getsockopt_string(zmq.LAST_ENDPOINT)
        a = _serve_args(artifact_dir)
        a[a.index("--frames") + 1] = "@" + ep
        srv = procs(*a)
        code = srv.wait()
        assert code != 0
        assert "cannot bind" in "".join(srv.err)
    finally:
        ctx.destroy(linger=0)


def test_replay_serve_listen_end_to_end(procs, artifact_dir, tmp_path):
    rng = np.random.default_rng(3)
    T = 300
    sess = Session(rng.normal(size=(T, 20)).astype(np.float32), rng.integers(0, 2, T), fs=100.0)
    path = save_session(sess, tmp_path / "rec.npz")
    srv = procs(*_serve_args(artifact_dir, "--deadline-ms", "1000"))
    ready = srv.event("ready")
    lis = procs("listen", "--predictions", ">" + ready["predictions"], "--session", path,
                "--session-name", "rec", "--quiet", "--timeout", "30")
    # 'listening' comes once the service greeted the subscription (hello): nothing is missed
    lis.event("listening")
    rep = procs("replay", path, "--frames", ">" + ready["frames"], "--speed", "5",
                "--session-name", "rec", "--no-progress")
    done = rep.event("done", timeout=60)
    assert done["sent"] == T and rep.wait() == 0
    summary = lis.event("summary", timeout=60)
    assert lis.wait() == 0
    # every frame answered, or (on a badly overloaded machine) reported stale: none vanish
    assert summary["predictions"] + summary["skipped"] + sum(summary["errors"].values()) == T
    assert summary["unaccounted"] == 0
    assert summary["predictions"] >= T // 2
    assert summary["end_of_stream"] == [{"session": "rec", "frames_sent": T}]
    assert 0.0 <= summary["accuracy"] <= 1.0 and 0.0 <= summary["balanced_accuracy"] <= 1.0
    assert summary["latency_s"]["p50"] > 0
    srv.p.send_signal(signal.SIGTERM)
    assert srv.wait() == 0
