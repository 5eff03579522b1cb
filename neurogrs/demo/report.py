"""The demo's results: the final table (text) and report.html (self-contained: PNG plots
embedded as base64 data URIs, no script, no network), plus results.json."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

__all__ = ["format_table", "write_plots", "write_html", "write_json"]


def _n(v) -> str:
    return "-" if v is None else f"{v:,}"


def _pct(after, before) -> str:
    return f"{100.0 * (after / before - 1):+.1f} %" if before else ""


def _ms(s) -> str:
    return "-" if s is None else f"{s * 1e3:.2f} ms"


def format_table(r: dict) -> str:
    """The final table printed at the end of the demo."""
    init, fin = r["sizes"]["original"], r["sizes"]["pruned"]
    us = r["inference_us"]
    off, on = r["offline"], r["online"]
    acc = r["accounting"]
    lat = r["latency_s"]
    w = 34
    rows = [
        f"{'':{w}}{'original':>16}{'pruned':>16}{'change':>10}",
        f"{'model':{w}}{r['chosen']:>16}{r['pruned_label']:>16}",
        f"{'parameters':{w}}{_n(init['params']):>16}{_n(fin['params']):>16}"
        f"{_pct(fin['params'], init['params']):>10}",
        f"{'  non-zero':{w}}{_n(init['nonzero_params']):>16}{_n(fin['nonzero_params']):>16}"
        f"{_pct(fin['nonzero_params'], init['nonzero_params']):>10}",
        f"{'FLOPs per frame':{w}}{_n(init['flops']):>16}{_n(fin['flops']):>16}"
        f"{_pct(fin['flops'], init['flops']):>10}",
        f"{'  effective (zeros skipped)':{w}}{_n(init['effective_flops']):>16}"
        f"{_n(fin['effective_flops']):>16}{_pct(fin['effective_flops'], init['effective_flops']):>10}",
        f"{'inference per frame, C engine':{w}}{us['original']['median_us']:>13.2f} µs"
        f"{us['pruned']['median_us']:>13.2f} µs"
        f"{_pct(us['pruned']['median_us'], us['original']['median_us']):>10}",
        f"{'test accuracy (offline)':{w}}{off['original_accuracy']:>16.3f}{off['accuracy']:>16.3f}",
        f"  (inference: median of {us['pruned']['frames']:,} calls from Python, in this process; "
        "for models this small the call overhead dominates)",
        "",
        f"online: {r['service_engine']} engine service, replay --credit {r['credit']} "
        f"of the {acc['sent']} held-out frames",
        f"{'  accuracy offline vs online':{w}}{off['accuracy']:.3f} vs {on['accuracy']:.3f}"
        f" (balanced {off['balanced_accuracy']:.3f} vs {on['balanced_accuracy']:.3f}; best "
        f"constant {on['baseline_accuracy']:.3f})",
        f"{'  end to end (source -> listener)':{w}}p50 {_ms(lat['p50'])}, p99 {_ms(lat['p99'])}, "
        f"max {_ms(lat['max'])}",
        f"{'  deadline misses':{w}}{r['deadline_misses']} (deadline {r['deadline_ms']:g} ms)",
        f"{'  frames':{w}}sent {acc['sent']} = answered {acc['answered']} + skipped "
        f"{acc['skipped']} + reported {acc['reported']}  "
        + ("(accounted for)" if acc["holds"] else "(MISMATCH)"),
        f"{'  rate reached':{w}}{r['frames_per_s']:,.0f} frames/s",
    ]
    return "\n".join(rows)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def write_plots(r: dict, predictions: list[dict], labels: np.ndarray, label_names: list,
                plots: Path) -> dict[str, Path]:
    """The online plots (latency histogram, predictions against labels over time)."""
    plt = _pyplot()
    plots.mkdir(parents=True, exist_ok=True)
    out = {}
    lat = np.array([p["latency_ms"] for p in predictions], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    if lat.size:
        ax.hist(lat, bins=min(60, max(10, lat.size // 10)), color="tab:blue")
        for q, ls in ((50, "-"), (99, "--")):
            v = float(np.percentile(lat, q))
            ax.axvline(v, color="k", ls=ls, lw=1, label=f"p{q} {v:.2f} ms")
        ax.legend(fontsize=8)
    ax.set_xlabel("end-to-end latency, source -> listener (ms)")
    ax.set_ylabel("frames")
    ax.set_title(f"latency of {lat.size} predictions (deadline {r['deadline_ms']:g} ms)")
    fig.tight_layout()
    out["latency"] = plots / "latency.png"
    fig.savefig(out["latency"], dpi=100)
    plt.close(fig)

    seq = np.array([p["seq"] for p in predictions], dtype=np.int64)
    pred = np.array([p["label"] for p in predictions], dtype=np.int64)
    fig, ax = plt.subplots(figsize=(9, 3.4))
    if seq.size:
        t = seq / r["fs"] if r["seq_is_frame_index"] else seq
        truth = labels[seq % labels.size]
        ax.step(t, truth, where="post", color="k", lw=1.2, label="recorded label")
        wrong = pred != truth
        ax.plot(t[~wrong], pred[~wrong] + 0.08, "|", color="tab:green", ms=6, label="prediction, right")
        ax.plot(t[wrong], pred[wrong] + 0.08, "|", color="tab:red", ms=8, label="prediction, wrong")
        k = int(max(truth.max(), pred.max())) + 1
        ax.set_yticks(range(k))
        ax.set_yticklabels([str(label_names[i]) if i < len(label_names) else str(i) for i in range(k)])
        ax.set_ylim(-0.5, k - 0.2)
        ax.legend(fontsize=8, loc="center right")
    ax.set_xlabel("session time (s)" if r["seq_is_frame_index"] else "held-out frame (test blocks in order)")
    ax.set_title("online predictions against the recorded labels (held-out part)")
    fig.tight_layout()
    out["predictions"] = plots / "predictions.png"
    fig.savefig(out["predictions"], dpi=100)
    plt.close(fig)
    return out


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _candidates_table(report: dict) -> str:
    head = ("<tr><th>model</th><th>stage</th><th>structure</th><th>params</th><th>non-zero</th>"
            "<th>FLOPs</th><th>val metric</th><th>test accuracy</th></tr>")
    rows = []
    chosen = (report.get("selection") or {}).get("chosen")
    for name, cand in report["candidates"].items():
        for stage in ("initial", "pruned", "tq"):
            v = cand.get(stage)
            if not v:
                continue
            mark = " class=\"chosen\"" if name == chosen and stage == ("tq" if report["tq"] else "pruned") else ""
            rows.append(f"<tr{mark}><td>{html.escape(name)}</td><td>{stage}</td>"
                        f"<td>{html.escape(str(v['structure']))}</td><td>{v['params']:,}</td>"
                        f"<td>{v['nonzero_params']:,}</td><td>{v['flops']:,}</td>"
                        f"<td>{v['val']['metric']:.3f}</td><td>{v['test']['accuracy']:.3f}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


_CSS = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "pre{background:#f4f4f4;padding:1em;overflow-x:auto}"
        "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px}"
        "tr.chosen{background:#e6f4e6;font-weight:bold}img{max-width:100%}figure{margin:1em 0}")


def write_html(r: dict, prune_report: dict, trajectory_plots: list[Path], candidates_plot: Path,
               online_plots: dict[str, Path], path: Path) -> Path:
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>neurogrs demo report</title><style>{_CSS}</style></head><body>",
        "<h1>neurogrs demo</h1>",
        f"<p>{html.escape(r['session_text'])}. Candidates {html.escape(', '.join(r['models']))}, "
        f"pruned with {html.escape(r['method'].upper())}{' + TQ' if r['tq'] else ''}; selected "
        f"<b>{html.escape(r['pruned_label'])}</b>; served by the {html.escape(r['service_engine'])} "
        f"engine, evaluated online with replay --credit {r['credit']}.</p>",
        "<h2>Summary</h2>", f"<pre>{html.escape(format_table(r))}</pre>",
        f"<p>{html.escape(r['settings_note'])}</p>",
        "<h2>Pruning trajectories</h2>",
        *(_img(p, f"pruning trajectory {p.stem}") for p in trajectory_plots),
        "<h2>Candidates compared</h2>", _img(candidates_plot, "candidates compared"),
        _candidates_table(prune_report),
        "<h2>Latency</h2>", _img(online_plots["latency"], "latency histogram"),
        "<h2>Predictions against labels</h2>", _img(online_plots["predictions"], "predictions over time"),
        "<h2>Stages</h2><table>",
        *(f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in r["stage_seconds"].items()),
        "</table></body></html>",
    ]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_json(r: dict, path: Path) -> Path:
    path.write_text(json.dumps(r, indent=2, default=float))
    return path
