"""The socket I/O timing script runs and compares the three paths (numbers not judged)."""
from __future__ import annotations

from neurogrs.bench.zmq_io import VARIANTS, main, measure


def test_measure_times_every_variant():
    res = measure(messages=200, rounds=1, body=64)
    assert set(res) == set(VARIANTS) == {"public", "private", "multipart"}
    for d in res.values():
        assert d["send"] > 0 and d["recv"] > 0


def test_main_prints_ratios(capsys):
    assert main(["--messages", "100", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "ratio to public" in out and "1.00x" in out
