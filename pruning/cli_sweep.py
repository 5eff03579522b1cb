"""`neurogrs sweep CONFIG.toml`: many pruning jobs, locally or on Ray, resumable.

The summary table is our own small function: the bench suite's table code (branch
prune-bench) was not on main when this was written.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "summary_rows", "markdown_table"]

_EPILOG = """\
CONFIG.toml (sessions relative to its folder):
  sessions = ["s1.npz", "s2.npz"]
  models = ["nn1", "nn2"]
  methods = ["grs", "jgrs"]
  trials = 3
  out = "sweep-out"
  [prune]
  retrain_epochs = 20

outputs in OUT: results/<job>.json as each job finishes (<job>.error.json for a failure),
runs/<job>/ (the prune outputs), summary.json, summary.md. Run the same command again to
resume: jobs with a result are skipped, failed ones are tried again.

example:
  neurogrs sweep sweep.toml --workers 2
  neurogrs sweep sweep.toml --ray 10.0.0.5:6379
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="run (session x model x method x trial) pruning jobs, resumable",
        description="Run every (session, model, method, trial) pruning job of CONFIG on a "
                    "local process pool (default) or a Ray cluster, saving each result as it "
                    "finishes, then print a summary table across jobs.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG.toml", help="the sweep description (TOML)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: `out` in CONFIG)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local processes at once (default: the CPUs available)")
    p.add_argument("--pin-cpus", action="store_true",
                   help="bind each local job to one CPU, round-robin (default off)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run on the existing Ray cluster at ADDRESS (host:port or 'auto') "
                        "instead of locally; needs the 'ray' extra")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)


def summary_rows(results: list[dict]) -> list[dict]:
    """One row per (model, method): jobs, test-metric loss, % params/FLOPs, wall, retrains."""
    import numpy as np

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["job"]["model"], r["job"]["method"]), []).append(r)
    rows = []
    for (model, method), rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        row = {"model": model, "method": method, "ok": len(ok), "failed": len(rs) - len(ok)}
        if ok:
            loss = np.array([r["initial"]["test"] - r["pruned"]["test"] for r in ok])
            row.update({
                "test_loss_mean": float(loss.mean()), "test_loss_min": float(loss.min()),
                "test_loss_max": float(loss.max()),
                "params_pct": float(np.mean([100 * r["pruned"]["params"]
                                             / r["initial"]["params"] for r in ok])),
                "flops_pct": float(np.mean([100 * r["pruned"]["flops"]
                                            / r["initial"]["flops"] for r in ok])),
                "prune_seconds": float(np.mean([r["prune_seconds"] for r in ok])),
                "retrainings": float(np.mean([r["retrainings"] for r in ok]))})
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    head = ("| model | method | ok | failed | test loss mean (min, max) | params % | FLOPs % "
            "| prune s | retrainings |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        if r["ok"]:
            lines.append(
                f"| {r['model']} | {r['method']} | {r['ok']} | {r['failed']} | "
                f"{r['test_loss_mean']:+.4f} ({r['test_loss_min']:+.4f}, "
                f"{r['test_loss_max']:+.4f}) | {r['params_pct']:.1f} | {r['flops_pct']:.1f} | "
                f"{r['prune_seconds']:.1f} | {r['retrainings']:.1f} |")
        else:
            lines.append(f"| {r['model']} | {r['method']} | 0 | {r['failed']} | - | - | - | - "
                         f"| - |")
    return "\n".join(lines)


def _cmd_sweep(args: argparse.Namespace) -> int:
    import os

    from neurogrs.errors import ConfigError
    from neurogrs.pruning import sweep as S

    settings = S.SweepSettings.from_file(args.config)
    out_dir = args.out or settings.out
    if not out_dir:
        raise ConfigError("give --out DIR or `out = \"DIR\"` in the sweep config")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(settings.to_dict(), indent=1))
    jobs = S.jobs_of(settings, out)
    todo = S.pending(jobs, out)
    skipped = len(jobs) - len(todo)
    print(f"sweep: {len(jobs)} jobs, {skipped} already done, {len(todo)} to run", file=sys.stderr)
    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="sweep", unit="job", file=sys.stderr)
    failures = []

    def done(result: dict) -> None:
        S.write_result(out, result)
        if result["status"] != "ok":
            failures.append(result)
            print(f"sweep: job {result['id']} failed: {result['error']}", file=sys.stderr)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=len(failures))

    try:
        if args.ray:
            S.run_ray(todo, args.ray, done)
        elif todo:
            workers = args.workers or len(os.sched_getaffinity(0))
            S.run_local(todo, workers, done, pin_cpus=args.pin_cpus)
    finally:
        if bar is not None:
            bar.close()
    results = S.load_results(jobs, out)
    rows = summary_rows(results)
    table = markdown_table(rows)
    failed = [r for r in results if r["status"] != "ok"]
    (out / "summary.json").write_text(json.dumps(
        {"rows": rows, "jobs": len(jobs), "ok": len(results) - len(failed),
         "failed": [{"id": r["id"], "error": r["error"]} for r in failed]}, indent=1))
    (out / "summary.md").write_text(table + "\n")
    print(table)
    for r in failed:
        print(f"failed: {r['id']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0
