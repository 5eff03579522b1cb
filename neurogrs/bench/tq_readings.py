"""Stage T readings side by side on the same structured models (`--tq-readings`).

A suite job keeps its structured model as an artifact (`<job dir>/<model>/<method>`).
For each reading of Stage T's stop rule (`PruneSettings.stage_t`, pruning/tq.py), this
module rebuilds the job's D_V / D_E exactly (the same split seed as the job's training:
`train()` draws the split first from `default_rng(seed)`), checks that the rebuilt D_V
gives the metric the job recorded for that model (else `ConfigError`: the data would not
be the job's), and runs Stage T + Q on it. No retraining: seconds per job.

The numbers per reading: non-zero parameters, distinct weight values (what the paper's
"Params_U" column counts: the authors' q.py reports `np.unique` of every weight after
Stage Q), effective FLOPs, D_V and D_E metrics, final θ and decimals.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from neurogrs.errors import ConfigError
from neurogrs.pruning.settings import PruneSettings

__all__ = ["job_data", "readings_for_job"]


def job_data(session_path: Path, spec, prune: PruneSettings):
    """D_T / D_V / D_E of a suite job, rebuilt from its session and settings."""
    from neurogrs.formats import load_session
    from neurogrs.pruning.data import prepare
    from neurogrs.splits import SplitSettings, make_split

    session = load_session(session_path)
    split = make_split(session.labels, SplitSettings(mode=prune.split, blocks=prune.blocks),
                       np.random.default_rng(prune.seed))
    return prepare(session, split, spec)


def readings_for_job(record: dict, sessions: Path, prune: PruneSettings,
                     readings: tuple[str, ...]) -> dict[str, dict]:
    """{reading: numbers} for one finished suite job record (`jobs.jsonl` line)."""
    from neurogrs.artifact import load_artifact
    from neurogrs.pruning.data import decision_metric
    from neurogrs.pruning.report import model_values
    from neurogrs.pruning.tq import tq

    path = Path(record["dir"]) / record["model"] / record["method"]
    spec = load_artifact(path).spec
    data = job_data(sessions / f"{record['session']}.npz", spec, prune)
    got = decision_metric(spec, data, prune.metric)
    want = record["pruned"]["val_metric"]
    if abs(got - want) > 1e-9:
        raise ConfigError(f"{record['key']}: the rebuilt validation part gives {prune.metric} "
                         f"{got:.6f} for {path}, the job recorded {want:.6f}: not the job's "
                         "data (another split seed or session?)")
    out = {}
    for reading in readings:
        result = tq(spec, data, replace(prune, stage_t=reading))
        if result.partial:  # Ctrl-C inside Stage T/Q: stop the suite, record nothing
            raise KeyboardInterrupt
        v = model_values(result.spec, data, prune.metric)
        out[reading] = {
            "nonzero_params": v["nonzero_params"], "distinct_values": v["distinct_values"],
            "effective_flops": v["effective_flops"], "val_metric": v["val"]["metric"],
            "test_metric": v["test"]["metric"], "theta": result.theta,
            "layer_theta": {str(k): t for k, t in result.layer_theta.items()},
            "decimals": result.decimals, "seconds": round(result.seconds, 3),
        }
    return out
