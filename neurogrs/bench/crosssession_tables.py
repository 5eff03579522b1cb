"""Tables of `neurogrs bench crosssession` (terminal and Markdown) from its result dict.

Per model: one row per mouse (S1 test part = within-session; S2, S3 and S2+S3 pooled =
cross-session; accuracy, the best constant predictor's balanced accuracy and accuracy and
the margin on S2+S3), the row pooled over mice, and the real session's forward-in-time
test part (its balanced accuracy in the "S1 test bal" column: within-session; acc, const
and margin on that test part).
Then a summary: one row per model, pooled numbers, and the difference to `nn1` (the
frame-wise reference temporal decoders must beat by >= 0.05) when nn1 was run.
"""
from __future__ import annotations

import math

__all__ = ["model_rows", "summary_rows", "terminal", "markdown"]

REFERENCE = "nn1"
_MODEL_HEAD = ("mouse", "neurons", "S1 test bal", "S2 bal", "S3 bal", "S2+S3 bal",
               "acc", "const bal", "const acc", "margin")
_SUMMARY_HEAD = ("model", "sim S1 test bal", "sim S2+S3 bal", "const bal", "margin",
                 f"vs {REFERENCE}", "real test bal", "real const acc", "real margin",
                 f"real vs {REFERENCE}", "train s")


def _f(x, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:+.3f}" if sign else f"{x:.3f}"


def model_rows(rec: dict) -> list[tuple[str, ...]]:
    rows = []
    for mouse, m in rec["mice"].items():
        s2, s3 = m["cross"]["sessions"]
        p = m["cross"]["pooled"]
        rows.append((mouse, str(m["neurons"]), _f(m["within"]["balanced_accuracy"]),
                     _f(s2["balanced_accuracy"]), _f(s3["balanced_accuracy"]),
                     _f(p["balanced_accuracy"]), _f(p["accuracy"]),
                     _f(p["best_constant_balanced_accuracy"]), _f(p["best_constant_accuracy"]),
                     _f(p["margin"], True)))
    p, w = rec["pooled"], rec["pooled_within"]
    rows.append(("pooled", "", _f(w["balanced_accuracy"]), "", "", _f(p["balanced_accuracy"]),
                 _f(p["accuracy"]), _f(p["best_constant_balanced_accuracy"]),
                 _f(p["best_constant_accuracy"]), _f(p["margin"], True)))
    if "real" in rec:
        t = rec["real"]["test"]
        rows.append(("real (test)", "", _f(t["balanced_accuracy"]), "", "", "",
                     _f(t["accuracy"]), _f(t["best_constant_balanced_accuracy"]),
                     _f(t["best_constant_accuracy"]), _f(t["margin"], True)))
    return rows


def summary_rows(result: dict) -> list[tuple[str, ...]]:
    models = result["models"]
    ref = models.get(REFERENCE)

    def diff(rec: dict, get) -> str:
        if ref is None or "error" in ref:
            return "n/a"
        try:
            return _f(get(rec) - get(ref), True)
        except (KeyError, TypeError):
            return "n/a"

    def sim(r):
        return r["pooled"]["balanced_accuracy"]

    def real(r):
        return r["real"]["test"]["balanced_accuracy"]

    rows = []
    for name, rec in models.items():
        if "error" in rec:
            rows.append((name, "failed", *("" for _ in _SUMMARY_HEAD[2:])))
            continue
        t = rec.get("real", {}).get("test")
        seconds = rec["train_seconds"] + rec.get("real", {}).get("train_seconds", 0.0)
        rows.append((name, _f(rec["pooled_within"]["balanced_accuracy"]), _f(sim(rec)),
                     _f(rec["pooled"]["best_constant_balanced_accuracy"]),
                     _f(rec["pooled"]["margin"], True), diff(rec, sim),
                     _f(t["balanced_accuracy"]) if t else "n/a",
                     _f(t["best_constant_accuracy"]) if t else "n/a",
                     _f(t["margin"], True) if t else "n/a", diff(rec, real),
                     f"{seconds:.1f}"))
    return rows


def _text_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths)))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))
    return out


def _md_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _describe(result: dict) -> str:
    s = result["settings"]
    real = result["real"]
    where = (f"real session {real['path']} ({real['frames']} frames, {real['neurons']} neurons; "
             f"blocked split over {real['blocks']} chunks, forward in time, test part)"
             if "path" in real else f"real session: {real['skipped']}")
    return (f"trained on S1 of each simulated mouse ({', '.join(s['mice'])}; {s['frames']} "
            f"frames per session; {s['epochs']} epochs, blocked split over {s['blocks']} "
            f"chunk(s), seed {s['seed']}), every frame of S2 and S3 decoded; {where}. "
            "bal: balanced accuracy; const: the best constant predictor on the same frames "
            "(always the most frequent class); margin: bal minus const bal; pooled: from "
            "confusion counts summed over sessions. The decoded sessions select nothing.")


def terminal(result: dict) -> str:
    lines = [_describe(result), ""]
    for name, rec in result["models"].items():
        lines.append(f"{name}")
        if "error" in rec:
            lines += [f"FAILED: {rec['error']}", ""]
            continue
        lines += _text_table(_MODEL_HEAD, model_rows(rec)) + [""]
    lines.append("summary")
    lines += _text_table(_SUMMARY_HEAD, summary_rows(result))
    lines.append(f"({result['seconds']:.0f} s)")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    lines = ["# Cross-session benchmark", "", _describe(result), "", "## Summary", ""]
    lines += _md_table(_SUMMARY_HEAD, summary_rows(result))
    for name, rec in result["models"].items():
        lines += ["", f"## {name}", ""]
        lines += ([f"FAILED: {rec['error']}"] if "error" in rec
                  else _md_table(_MODEL_HEAD, model_rows(rec)))
    return "\n".join(lines) + "\n"
