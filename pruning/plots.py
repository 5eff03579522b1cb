"""PNG plots of a prune report (matplotlib, Agg backend: no display needed).

    plots/<model>_<method>.png   D_V metric and parameters vs iteration (accepted model;
                                 rejected candidates as crosses)
    plots/candidates.png         every candidate: parameters vs D_V metric, initial ->
                                 pruned (-> TQ, non-zero parameters)
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_plots"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _trajectory(plt, name: str, cand: dict, metric: str, path: Path) -> None:
    steps = cand["search"]["trajectory"]
    it = [s["iteration"] for s in steps]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax1.plot(it, [s["metric"] for s in steps], "o-", ms=3, label="accepted model")
    rej = [s for s in steps if not s["accepted"] and s["candidate_metric"] is not None]
    if rej:
        ax1.plot([s["iteration"] for s in rej], [s["candidate_metric"] for s in rej], "x",
                 color="tab:red", label="rejected best candidate")
    a0 = cand["search"]["a0"]
    ax1.axhline(a0 * cand["tau_s"], ls="--", color="grey", lw=1, label="τ_S · A0")
    ax1.set_ylabel(f"val {metric}")
    ax1.legend(loc="lower left", fontsize=8)
    ax1.set_title(f"{name}: {cand['search']['method'].upper()}")
    ax2.plot(it, [s["params"] for s in steps], "o-", ms=3, color="tab:green")
    ax2.set_ylabel("parameters")
    ax2.set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _candidates(plt, report: dict, metric: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, cand in report["candidates"].items():
        pts = [(cand[k]["nonzero_params"], cand[k]["val"]["metric"], k)
               for k in ("initial", "pruned", "tq") if cand.get(k)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
        for x, y, kind in pts:
            ax.annotate(kind, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("non-zero parameters (log)")
    ax.set_ylabel(f"val {metric}")
    chosen = (report.get("selection") or {}).get("chosen")
    ax.set_title("candidates" + (f" (selected: {chosen})" if chosen else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(report: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Write every plot of `report` under `out_dir/plots`; returns the paths."""
    plt = _pyplot()
    out = Path(out_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    metric = report["settings"]["metric"]
    paths = []
    for name, cand in report["candidates"].items():
        if cand.get("search"):
            p = out / f"{name}_{cand['search']['method']}.png"
            _trajectory(plt, name, cand, metric, p)
            paths.append(p)
    if report["candidates"]:
        p = out / "candidates.png"
        _candidates(plt, report, metric, p)
        paths.append(p)
    return paths
