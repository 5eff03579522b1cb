"""`neurogrs replay FILE.nwb` streams the NWB session's frames, in order, over a real
loopback socket (the receiver in a thread, every wait bounded)."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import zmq

pytest.importorskip("pynwb", reason="the 'nwb' extra (make test installs it)")

import nwb_builders as B  # noqa: E402
from stream_helpers import term_context  # noqa: E402

from neurogrs.cli import main  # noqa: E402
from neurogrs.stream import protocol as P  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def _receive(sink, out, timeout=20.0):
    frames, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sink.poll(200):
                continue
            msg = P.decode_message(sink.recv_multipart())
            if isinstance(msg, P.EndOfStream):
                out["end"] = msg
                break
            frames.append(msg)
    finally:
        out["frames"] = frames


def test_replay_streams_the_nwb_frames(tmp_path, capsys):
    f = B.new_file()
    for name, n in (("plane0", 4), ("plane1", 6)):  # two planes: the flag picks one
        ps = B.add_plane(f, name, B.centroids(n))
        B.add_traces(f, ps, B.traces(40, n, seed=n), container=f"Fluorescence_{name}")
    B.add_timeseries(f, "speed", 1.0 + np.sin(np.arange(40) / 3), "cm/s", rate=10.0)
    B.write(f, tmp_path / "rig.nwb")
    ctx = zmq.Context()
    try:
        sink = ctx.socket(zmq.SUB)
        sink.linger = 0
        sink.bind("tcp://127.0.0.1:*")
        sink.subscribe(b"")
        endpoint = sink.getsockopt_string(zmq.LAST_ENDPOINT)
        out: dict = {}
        th = threading.Thread(target=_receive, args=(sink, out), daemon=True)
        th.start()
        code = main(["replay", str(tmp_path / "rig.nwb"), "--nwb-plane", "plane1",
                     "--frames", ">" + endpoint, "--speed", "max", "--wait-timeout", "20",
                     "--no-progress"])
        th.join(20)
        sink.close()
    finally:
        term_context(ctx)
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["event"] == "done" and report["sent"] == 40
    frames = out["frames"]
    assert [fr.seq for fr in frames] == list(range(40))
    assert {fr.session for fr in frames} == {"rig"}
    np.testing.assert_array_equal(np.stack([fr.data for fr in frames]), B.traces(40, 6, seed=6))
    assert out["end"].frames == 40
