"""What `neurogrs prune` reports: v_i per model, reductions, trajectories, a summary table.

v_i of a model: D_V and D_E metrics (the decision metric, accuracy, balanced accuracy),
FLOPs and parameters (true FLOPs at batch 1, TensorFlow-profiler convention), non-zero
parameters, effective FLOPs (FLOPs − 2 per zero weight), distinct weight values.
Reductions are percentages of the initial model. The test part is reported here and
nowhere else: selection reads `selection_values`, which holds D_V numbers and counts only.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from neurogrs.pruning.data import PruneData, evaluate
from neurogrs.pruning.selection import Candidate
from neurogrs.pruning.tq import distinct_values
from neurogrs.spec import ModelSpec

__all__ = ["SCHEMA", "model_values", "reductions", "selection_values", "write_report", "to_json",
           "summary_table", "chance_warning", "cross_session_lines"]

SCHEMA = "neurogrs.prune-report/1"
CHANCE_MARGIN = 0.02  # balanced accuracy within this of chance counts as chance


def _part(m: dict, metric: str) -> dict[str, Any]:
    keys = ("accuracy", "balanced_accuracy", "baseline_accuracy", "chance_balanced_accuracy", "n")
    return {"metric": m[metric], **{k: m[k] for k in keys}}


def model_values(spec: ModelSpec, data: PruneData, metric: str) -> dict[str, Any]:
    """v_i of one model (numpy forward, what every engine computes)."""
    m = evaluate(spec, data)
    s = spec.summary()
    return {"structure": s["structure"], "val": _part(m["val"], metric),
            "test": _part(m["test"], metric),
            "flops": s["flops"], "params": s["params"], "nonzero_params": s["nonzero_params"],
            "effective_flops": s["effective_flops"], "distinct_values": distinct_values(spec)}


def reductions(values: dict, initial: dict) -> dict[str, float]:
    """Percent reduction of each count versus the initial model (positive = smaller)."""
    out = {}
    for key in ("params", "flops", "nonzero_params", "effective_flops"):
        base = initial[key]
        out[f"{key}_pct"] = round(100.0 * (1.0 - values[key] / base), 2) if base else 0.0
    out["val_metric_change"] = round(values["val"]["metric"] - initial["val"]["metric"], 6)
    out["test_metric_change"] = round(values["test"]["metric"] - initial["test"]["metric"], 6)
    return out


def selection_values(name: str, values: dict, initial: dict) -> Candidate:
    """The numbers selection may see: D_V and counts (never the test part)."""
    v = {"acc": values["val"]["metric"], "accuracy": values["val"]["accuracy"],
         "balanced_accuracy": values["val"]["balanced_accuracy"]}
    o = {"orig": initial["val"]["metric"], "orig_accuracy": initial["val"]["accuracy"],
         "orig_balanced_accuracy": initial["val"]["balanced_accuracy"],
         "orig_flops": initial["flops"], "orig_params": initial["params"]}
    counts = {k: values[k] for k in ("flops", "params", "nonzero_params", "effective_flops")}
    return Candidate(name, {**v, **counts, **o})


def chance_warning(name: str, values: dict) -> str | None:
    """A warning when the initial model's balanced accuracy on D_V is at chance."""
    val = values["val"]
    if val["balanced_accuracy"] <= val["chance_balanced_accuracy"] + CHANCE_MARGIN:
        return (f"the initial {name} is at chance on D_V (accuracy {val['accuracy']:.3f}, "
                f"balanced {val['balanced_accuracy']:.3f}, majority baseline "
                f"{val['baseline_accuracy']:.3f}): pruning it is meaningless")
    return None


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/Inf become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def to_json(report: dict) -> str:
    """The report as strict JSON (NaN/Inf as null) with its schema first."""
    return json.dumps(_clean({"schema": SCHEMA, **report}), indent=2, allow_nan=False)


def write_report(report: dict, out_dir: str | os.PathLike) -> Path:
    """report.json, written atomically (a Ctrl-C never leaves half a file)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(to_json(report) + "\n")
    tmp.replace(path)
    return path


def summary_table(report: dict) -> str:
    """A terminal table: one row per model (initial, pruned, TQ) with the key numbers."""
    metric = report["settings"]["metric"]
    head = (f"{'model':<16} {'structure':<22} {'params':>8} {'nonzero':>8} {'FLOPs':>9} "
            f"{'val ' + metric[:8]:>13} {'test ' + metric[:8]:>13} {'params -%':>9} "
            f"{'nonzero -%':>10} {'retrains':>8} {'sec':>7}")
    lines = [head, "-" * len(head)]
    for name, cand in report["candidates"].items():
        for kind in ("initial", "pruned", "tq"):
            v = cand.get(kind)
            if v is None:
                continue
            red = cand.get("reductions", {}).get(kind, {})
            search = cand.get("search", {}) if kind == "pruned" else {}
            label = name if kind == "initial" else f"  {kind}"
            lines.append(
                f"{label:<16} {str(v['structure']):<22} {v['params']:>8,} "
                f"{v['nonzero_params']:>8,} {v['flops']:>9,} {v['val']['metric']:>13.4f} "
                f"{v['test']['metric']:>13.4f} {red.get('params_pct', 0.0):>9.1f} "
                f"{red.get('nonzero_params_pct', 0.0):>10.1f} "
                f"{search.get('retrainings', ''):>8} {search.get('seconds', ''):>7}"
            )
    sel = report.get("selection") or {}
    if "chosen" in sel:
        lines.append(f"selected: {sel['chosen']} ({sel['objective']}; feasible: "
                     f"{', '.join(sel['feasible'])})")
    elif "error" in sel:
        lines.append(f"selection failed: {sel['error']}")
    if report.get("partial"):
        lines.append("PARTIAL: interrupted; the numbers above are the best accepted so far")
    if report.get("cross_session"):
        lines += cross_session_lines(report["cross_session"])
    return "\n".join(lines)


def cross_session_lines(cross: dict) -> list[str]:
    """Balanced accuracy of every artifact on each --eval-session and pooled."""
    from pathlib import PurePath

    names = [PurePath(n).name[:12] for n in cross["sessions"]] + ["pooled"]
    lines = ["", "cross-session balanced accuracy (--eval-session, every frame; reported only, "
                 "never used to select)",
             f"{'model':<16} " + " ".join(f"{n:>12}" for n in names) + f" {'const bal':>9}"]

    def row(label: str, result: dict) -> str:
        cells = [r["balanced_accuracy"] for r in result["sessions"]]
        cells.append(result["pooled"]["balanced_accuracy"])
        return (f"{label:<16} " + " ".join(f"{c:>12.4f}" for c in cells)
                + f" {result['pooled']['best_constant_balanced_accuracy']:>9.3f}")

    for name, kinds in cross.get("candidates", {}).items():
        for kind, result in kinds.items():
            lines.append(row(name if kind == "initial" else f"  {kind}", result))
    if "selected" in cross:
        lines.append(row("selected", cross["selected"]))
    return lines
