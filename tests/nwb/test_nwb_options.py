"""The NWB series chosen for the labels travels with the model: `train` records
--nwb-behaviour with its other label options, and `evaluate`/`listen` read an NWB session
the same way unless told otherwise (other formats ignore the recorded name)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("pynwb", reason="the 'nwb' extra (make test installs it)")

import nwb_builders as B  # noqa: E402

from neurogrs.cli import build_parser  # noqa: E402
from neurogrs.cli_session import label_options_from_args  # noqa: E402
from neurogrs.errors import ConfigError  # noqa: E402


def _two_sources(path):
    f = B.new_file()
    ps = B.add_plane(f, "PlaneSegmentation", B.centroids(20))
    B.add_traces(f, ps, B.traces(100, 20))
    B.add_timeseries(f, "labels", (np.arange(100) // 10) % 2, "label", rate=10.0)
    B.add_intervals(f, "licks", [(1.0, 3.0)])
    return B.write(f, path)


def _artifact(tmp_path, train_argv):
    from neurogrs.artifact import save_artifact
    from neurogrs.zoo import init_spec

    args = build_parser().parse_args(["train", "x.nwb", "--out", "o", *train_argv])
    spec = init_spec("nn2", 20, np.random.default_rng(0))
    spec = dataclasses.replace(spec, provenance={"session_options": label_options_from_args(args)})
    return save_artifact(spec, tmp_path / "art")


def test_recorded_nwb_behaviour_is_applied_to_nwb_sessions_only(tmp_path, capsys):
    from neurogrs.formats import save_session
    from neurogrs.simulate import simulate_session
    from neurogrs.stream.cli import scoring_labels

    p = _two_sources(tmp_path / "two.nwb")
    art = _artifact(tmp_path, ["--nwb-behaviour", "licks"])
    listen = build_parser().parse_args(["listen", "--session", str(p), "--artifact", str(art)])
    licks = ((np.arange(100) >= 10) & (np.arange(100) < 30)).astype(int)
    np.testing.assert_array_equal(scoring_labels(listen), licks)  # not the label series
    assert "--nwb-behaviour licks" in capsys.readouterr().err
    # without the artifact the file's label series is the default
    plain = build_parser().parse_args(["listen", "--session", str(p)])
    np.testing.assert_array_equal(scoring_labels(plain), (np.arange(100) // 10) % 2)
    # the same artifact on a native .npz: the recorded NWB name is not applied
    npz = save_session(simulate_session(n_neurons=20, n_frames=200, seed=1), tmp_path / "s.npz")
    other = build_parser().parse_args(["listen", "--session", str(npz), "--artifact", str(art)])
    assert scoring_labels(other).shape == (200,)


def test_nwb_flags_without_a_session_are_refused_by_listen():
    from neurogrs.stream.cli import scoring_labels

    args = build_parser().parse_args(["listen", "--nwb-plane", "plane0"])
    with pytest.raises(ConfigError, match="session options apply to --session FILE"):
        scoring_labels(args)
