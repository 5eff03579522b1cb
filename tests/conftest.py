import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

NELPY = Path(__file__).resolve().parents[2] / "shared" / "data" / "nelpy_linear_track" / "nelpy_linear_track.npz"


@pytest.fixture(scope="session")
def nelpy_path():
    """The real recorded session (shared/ beside the checkout, as in CI)."""
    env = os.environ.get("NEUROGRS_NELPY")
    p = Path(env) if env else NELPY
    if not p.is_file():
        pytest.fail(f"real session not found at {p} (set NEUROGRS_NELPY)")
    return p


@pytest.fixture
def procs():
    """spawn(*neurogrs CLI args) -> EventProcess (a real subprocess speaking JSON events);
    every one is stopped at the end of the test."""
    from neurogrs.bench.process import EventProcess

    started = []

    def spawn(*args):
        pr = EventProcess(["-m", "neurogrs", *(str(a) for a in args)])
        started.append(pr)
        return pr

    yield spawn
    for pr in started:
        pr.kill()
