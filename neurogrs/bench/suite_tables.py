"""The suite's tables, shaped like the papers' (Wu et al. 2022, Tables 5 and 6).

One row per (split, model, method), over that group's finished jobs:

- test metric loss in percentage points, initial − pruned (mean, min, max): accuracy on
  the shuffled split, balanced accuracy on the blocked split (each split's decision metric)
- parameters and FLOPs of the pruned model as % of the initial model
- after Stage T/Q: non-zero parameters and distinct weight values as % of the initial
  parameters (distinct values is what the paper's "Params_U" column counts: the authors'
  q.py reports np.unique over every weight after Stage Q), and its test loss
- when the jobs ran `--tq-readings`: one row per Stage T reading on the same structured
  models (`readings`)
- search wall time (seconds) and the number of retrainings (fine-tunings)

and per (split, model) GRS against JGRS on the same jobs (`jgrs_vs_grs`): speed-up in wall
time and in retrainings, compression and test-loss differences.

Every number is computed here from the job records (`jobs.jsonl`); `targets` checks the
issue's numbers against the shuffled-split rows. Written as OUT/tables.json, tables.md and
tables.png (matplotlib, Agg), and returned for the terminal.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

__all__ = ["TABLES_SCHEMA", "stats", "summarize", "jgrs_vs_grs", "summarize_readings", "targets", "markdown",
           "terminal", "write_tables"]

TABLES_SCHEMA = "neurogrs.prune-suite-tables/1"
SPLIT_TITLES = {"shuffled": "Shuffled split, accuracy (the papers' setting)",
                "blocked": "Blocked split, balanced accuracy (the product's default)"}
MODEL_ORDER = ("nn1", "nn2", "cnn1", "cnn2")


def stats(xs: Iterable[float]) -> dict[str, float] | None:
    """mean, min, max of the values (None when there are none)."""
    xs = [float(x) for x in xs]
    if not xs:
        return None
    return {"mean": sum(xs) / len(xs), "min": min(xs), "max": max(xs)}


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole  # whole: an initial model's count, never 0


def _order(values: Iterable[str], first: Iterable[str]) -> list[str]:
    values, first = list(dict.fromkeys(values)), list(first)
    return [v for v in first if v in values] + [v for v in values if v not in first]


def summarize(records: list[dict]) -> list[dict]:
    """One row per (split, model, method) of the finished ("ok") records."""
    from neurogrs.bench.suite import SPLITS
    from neurogrs.pruning.methods import method_names

    ok = [r for r in records if r.get("status") == "ok"]
    rows = []
    for split in _order((r["split"] for r in ok), SPLITS):
        for model in _order((r["model"] for r in ok if r["split"] == split), MODEL_ORDER):
            group = [r for r in ok if r["split"] == split and r["model"] == model]
            for method in _order((r["method"] for r in group), method_names()):
                rs = [r for r in group if r["method"] == method]
                tq = [r for r in rs if r.get("tq")]
                rows.append({
                    "split": split, "metric": rs[0]["metric"], "model": model,
                    "method": method, "jobs": len(rs),
                    "sessions": sorted({r["session"] for r in rs}),
                    "initial_params": stats(r["initial"]["params"] for r in rs),
                    "initial_test_metric": stats(r["initial"]["test_metric"] for r in rs),
                    "test_loss_pp": stats(100.0 * (r["initial"]["test_metric"]
                                                   - r["pruned"]["test_metric"]) for r in rs),
                    "val_loss_pp": stats(100.0 * (r["initial"]["val_metric"]
                                                  - r["pruned"]["val_metric"]) for r in rs),
                    "params_pct": stats(_pct(r["pruned"]["params"], r["initial"]["params"])
                                        for r in rs),
                    "flops_pct": stats(_pct(r["pruned"]["flops"], r["initial"]["flops"])
                                       for r in rs),
                    "tq_nonzero_pct": stats(_pct(r["tq"]["nonzero_params"],
                                                 r["initial"]["params"]) for r in tq),
                    "tq_distinct_pct": stats(_pct(r["tq"]["distinct_values"],
                                                  r["initial"]["params"]) for r in tq
                                             if r["tq"].get("distinct_values") is not None),
                    "tq_test_loss_pp": stats(100.0 * (r["initial"]["test_metric"]
                                                      - r["tq"]["test_metric"]) for r in tq),
                    "search_seconds": stats(r["search_seconds"] for r in rs),
                    "retrainings": stats(r["retrainings"] for r in rs),
                })
    return rows


def jgrs_vs_grs(records: list[dict]) -> list[dict]:
    """Per (split, model): GRS against JGRS on the same jobs (session and trial).

    Speed-ups are ratios of sums over the pairs (GRS / JGRS: wall time of the search and
    fine-tunings); compression: the mean difference of params % of initial (JGRS − GRS,
    negative = JGRS more compressed) and the geometric mean of JGRS / GRS params; accuracy:
    the mean difference of test loss in pp (JGRS − GRS).
    """
    ok = {(r["split"], r["model"], r["session"], r["trial"], r["method"]): r
          for r in records if r.get("status") == "ok"}
    out = []
    for split, model in dict.fromkeys((k[0], k[1]) for k in ok):
        pairs = [(ok[k], ok[k[:4] + ("jgrs",)]) for k in ok
                 if k[:2] == (split, model) and k[4] == "grs" and k[:4] + ("jgrs",) in ok]
        if not pairs:
            continue
        wall = [sum(p[i]["search_seconds"] for p in pairs) for i in (0, 1)]
        fine = [sum(p[i]["retrainings"] for p in pairs) for i in (0, 1)]

        def pct(r):
            return _pct(r["pruned"]["params"], r["initial"]["params"])

        def loss(r):
            return 100.0 * (r["initial"]["test_metric"] - r["pruned"]["test_metric"])

        out.append({
            "split": split, "model": model, "pairs": len(pairs),
            "wall_speedup": wall[0] / wall[1] if wall[1] > 0 else None,
            "retraining_speedup": fine[0] / fine[1] if fine[1] > 0 else None,
            "params_pct_diff": sum(pct(j) - pct(g) for g, j in pairs) / len(pairs),
            "params_ratio_geomean": math.exp(sum(math.log(j["pruned"]["params"]
                                                          / g["pruned"]["params"])
                                                 for g, j in pairs) / len(pairs)),
            "test_loss_pp_diff": sum(loss(j) - loss(g) for g, j in pairs) / len(pairs),
        })
    return out


def summarize_readings(records: list[dict]) -> list[dict]:
    """One row per (split, model, method, Stage T reading) of the records that hold
    `tq_readings` (the same structured model under each reading)."""
    from neurogrs.pruning.settings import STAGE_T_READINGS

    ok = [r for r in records if r.get("status") == "ok" and r.get("tq_readings")]
    rows = []
    for split, model, method in dict.fromkeys((r["split"], r["model"], r["method"])
                                              for r in ok):
        rs = [r for r in ok if (r["split"], r["model"], r["method"]) == (split, model, method)]
        for reading in _order((k for r in rs for k in r["tq_readings"]), STAGE_T_READINGS):
            pairs = [(r, r["tq_readings"][reading]) for r in rs if reading in r["tq_readings"]]
            rows.append({
                "split": split, "model": model, "method": method, "reading": reading,
                "jobs": len(pairs),
                "nonzero_pct": stats(_pct(v["nonzero_params"], r["initial"]["params"])
                                     for r, v in pairs),
                "distinct_pct": stats(_pct(v["distinct_values"], r["initial"]["params"])
                                      for r, v in pairs),
                "val_loss_pp": stats(100.0 * (r["initial"]["val_metric"] - v["val_metric"])
                                     for r, v in pairs),
                "test_loss_pp": stats(100.0 * (r["initial"]["test_metric"] - v["test_metric"])
                                      for r, v in pairs),
            })
    return rows


def _row(rows: list[dict], split: str, model: str, method: str) -> dict | None:
    return next((r for r in rows if (r["split"], r["model"], r["method"])
                 == (split, model, method)), None)


def targets(rows: list[dict], split: str = "shuffled") -> list[dict]:
    """The issue's targets on one split's rows; `met` is None when a row is missing."""
    out = []
    grs = _row(rows, split, "nn1", "grs")
    measured = None if grs is None else (
        f"{grs['params_pct']['mean']:.1f}% params at {grs['test_loss_pp']['mean']:.2f} pp loss")
    out.append({"target": "GRS on nn1 keeps <= 40% params at <= 1.5 pp test loss (means)",
                "paper": "37% at 1.0%", "measured": measured,
                "met": None if grs is None else bool(grs["params_pct"]["mean"] <= 40.0
                                                     and grs["test_loss_pp"]["mean"] <= 1.5)})
    tq = None if grs is None else grs["tq_nonzero_pct"]
    out.append({"target": "GRS+TQ on nn1: non-zero params <= 6% (mean)", "paper": "5.7%",
                "measured": None if tq is None else f"{tq['mean']:.1f}%",
                "met": None if tq is None else bool(tq["mean"] <= 6.0)})
    dv = None if grs is None else grs.get("tq_distinct_pct")
    out.append({"target": "GRS+TQ on nn1: distinct weight values <= 6% of the initial params "
                          "(mean; what the paper's Params_U counts)", "paper": "5.72%",
                "measured": None if dv is None else f"{dv['mean']:.1f}%",
                "met": None if dv is None else bool(dv["mean"] <= 6.0)})
    for model in ("nn1", "cnn1"):
        g = _row(rows, split, model, "grs")
        for other in ("rrs", "nwm"):
            o = _row(rows, split, model, other)
            ok = g is not None and o is not None
            out.append({
                "target": f"GRS keeps fewer params than {other.upper()} on {model} (means)",
                "paper": "yes (Table 6)",
                "measured": (f"{g['params_pct']['mean']:.1f}% vs {o['params_pct']['mean']:.1f}%"
                             if ok else None),
                "met": bool(g["params_pct"]["mean"] < o["params_pct"]["mean"]) if ok else None})
    return out


def _mmm(s: dict | None, digits: int = 1) -> str:
    if s is None:
        return "-"
    return f"{s['mean']:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


def _cells(r: dict) -> list[str]:
    return [r["model"], r["method"].upper(), str(r["jobs"]), _mmm(r["test_loss_pp"], 2),
            _mmm(r["params_pct"]), _mmm(r["flops_pct"]), _mmm(r["tq_nonzero_pct"]),
            _mmm(r.get("tq_distinct_pct")), _mmm(r["tq_test_loss_pp"], 2), f"{r['search_seconds']['mean']:.1f}",
            _mmm(r["retrainings"], 0)]


_HEAD = ["model", "method", "jobs", "test loss pp", "params %", "FLOPs %", "+TQ non-zero %",
         "+TQ distinct %", "+TQ test loss pp", "search s", "retrainings"]
_READING_HEAD = ["model", "method", "Stage T reading", "jobs", "+TQ non-zero %",
                 "+TQ distinct %", "+TQ val loss pp", "+TQ test loss pp"]


def _reading_cells(r: dict) -> list[str]:
    return [r["model"], r["method"].upper(), r["reading"], str(r["jobs"]),
            _mmm(r["nonzero_pct"]), _mmm(r["distinct_pct"]), _mmm(r["val_loss_pp"], 2),
            _mmm(r["test_loss_pp"], 2)]


_VS_HEAD = ["split", "model", "pairs", "wall speed-up", "fine-tuning speed-up",
            "params pts JGRS−GRS", "params JGRS/GRS", "test loss pp JGRS−GRS"]


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}x"


def _vs_cells(v: dict) -> list[str]:
    return [v["split"], v["model"], str(v["pairs"]), _x(v["wall_speedup"]),
            _x(v["retraining_speedup"]), f"{v['params_pct_diff']:+.1f}",
            f"{v['params_ratio_geomean']:.2f}", f"{v['test_loss_pp_diff']:+.2f}"]


def _mark(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[met]


def markdown(tables: dict) -> str:
    lines = ["# Pruning suite: the simulated nine-session suite", "",
             f"{tables['jobs_ok']} jobs finished, {tables['jobs_failed']} failed. Cells: mean "
             "[min, max] over sessions and trials. Loss = initial − pruned, in percentage "
             "points of the split's metric on the test part D_E; params, FLOPs and non-zero "
             "params in % of the initial model. Search s: wall time of the structured search "
             "(fine-tunings included, initial training and Stage T/Q not).", ""]
    for split, title in SPLIT_TITLES.items():
        rows = [r for r in tables["rows"] if r["split"] == split]
        if not rows:
            continue
        lines += [f"## {title}", "", "| " + " | ".join(_HEAD) + " |",
                  "|" + "---|" * len(_HEAD)]
        lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
        sessions = sorted({s for r in rows for s in r["sessions"]})
        lines += ["", f"Sessions: {', '.join(sessions)}.", ""]
        readings = [r for r in tables.get("readings", []) if r["split"] == split]
        if readings:
            lines += [f"Stage T readings on the same structured models ({split} split):", "",
                      "| " + " | ".join(_READING_HEAD) + " |", "|" + "---|" * len(_READING_HEAD)]
            lines += ["| " + " | ".join(_reading_cells(r)) + " |" for r in readings]
            lines.append("")
    if tables.get("jgrs_vs_grs"):
        lines += ["## GRS vs JGRS (the same jobs)", "", "| " + " | ".join(_VS_HEAD) + " |",
                  "|" + "---|" * len(_VS_HEAD)]
        lines += ["| " + " | ".join(_vs_cells(v)) + " |" for v in tables["jgrs_vs_grs"]]
        lines += ["", "Speed-ups: GRS / JGRS, sums over the pairs. Params: JGRS − GRS in "
                  "points of % of initial (negative = JGRS more compressed) and the geometric "
                  "mean of JGRS / GRS params. Test loss: JGRS − GRS, pp.", ""]
    for split in ("shuffled", "blocked"):
        lines += [f"## Targets ({split} split)", "", "| target | paper | measured | |",
                  "|---|---|---|---|"]
        lines += [f"| {t['target']} | {t['paper']} | {t['measured'] or '-'} | {_mark(t['met'])} |"
                  for t in tables["targets"][split]]
        lines.append("")
    return "\n".join(lines)


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(f"{c:<{w}}" for c, w in zip(row, widths)).rstrip() for row in rows]


def terminal(tables: dict) -> str:
    out = []
    for split, title in SPLIT_TITLES.items():
        rows = [[*_HEAD]] + [_cells(r) for r in tables["rows"] if r["split"] == split]
        if len(rows) == 1:
            continue
        out += [title, *_aligned(rows), ""]
        readings = [_reading_cells(r) for r in tables.get("readings", []) if r["split"] == split]
        if readings:
            out += [f"Stage T readings, same structured models ({split})",
                    *_aligned([[*_READING_HEAD], *readings]), ""]
    vs = [[*_VS_HEAD]] + [_vs_cells(v) for v in tables.get("jgrs_vs_grs", [])]
    if len(vs) > 1:
        widths = [max(len(row[i]) for row in vs) for i in range(len(_VS_HEAD))]
        out.append("GRS vs JGRS (the same jobs; speed-ups GRS / JGRS)")
        out += ["  ".join(f"{c:<{w}}" for c, w in zip(row, widths)).rstrip() for row in vs]
        out.append("")
    for t in tables["targets"]["shuffled"]:
        out.append(f"target: {t['target']}: {t['measured'] or '-'} -> {_mark(t['met'])}")
    out.append(f"{tables['jobs_ok']} jobs finished, {tables['jobs_failed']} failed")
    return "\n".join(out)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # suite processes may share OUT
    tmp.write_text(text)
    tmp.replace(path)


def _plot(tables: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    splits = [s for s in SPLIT_TITLES if any(r["split"] == s for r in tables["rows"])]
    if not splits:
        return
    fig, axes = plt.subplots(2, len(splits), figsize=(6 * len(splits), 7), squeeze=False)
    for col, split in enumerate(splits):
        rows = [r for r in tables["rows"] if r["split"] == split]
        labels = [f"{r['model']}\n{r['method'].upper()}" for r in rows]
        x = range(len(rows))
        for ax, key, ylabel in ((axes[0][col], "params_pct", "params, % of initial"),
                                (axes[1][col], "test_loss_pp", "test loss, pp")):
            mean = [r[key]["mean"] for r in rows]
            err = [[m - r[key]["min"] for m, r in zip(mean, rows)],
                   [r[key]["max"] - m for m, r in zip(mean, rows)]]
            ax.bar(x, mean, yerr=err, capsize=3, color="tab:blue", alpha=0.8,
                   label="structured (mean, min-max)")
            if key == "params_pct":
                tq = [r["tq_nonzero_pct"]["mean"] if r["tq_nonzero_pct"] else math.nan
                      for r in rows]
                ax.plot(x, tq, "v", color="tab:red", label="+TQ non-zero")
                ax.set_title(SPLIT_TITLES[split], fontsize=10)
                ax.legend(fontsize=8)
            ax.set_xticks(list(x), labels, fontsize=8)
            ax.set_ylabel(ylabel)
            ax.axhline(0, color="grey", lw=0.5)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def write_tables(records: list[dict], settings: Any, out_dir: str | Path) -> dict[str, Any]:
    """OUT/tables.json, tables.md, tables.png from the records; returns the tables."""
    rows = summarize(records)
    tables = {
        "schema": TABLES_SCHEMA, "settings": settings.to_dict(),
        "jobs_ok": sum(r.get("status") == "ok" for r in records),
        "jobs_failed": sum(r.get("status") == "error" for r in records),
        "failed": [{"key": r["key"], "error": r.get("error")} for r in records
                   if r.get("status") == "error"],
        "rows": rows,
        "jgrs_vs_grs": jgrs_vs_grs(records),
        "readings": summarize_readings(records),
        "targets": {split: targets(rows, split) for split in ("shuffled", "blocked")},
    }
    out = Path(out_dir)
    _write(out / "tables.json", json.dumps(tables, indent=2, allow_nan=False) + "\n")
    _write(out / "tables.md", markdown(tables))
    try:
        _plot(tables, out / "tables.png")
    except (OSError, ValueError) as exc:  # a plot must never lose the tables
        tables["plot_error"] = str(exc)
    return tables
