"""`make demo` / `neurogrs demo`: the main job end to end on one session, with a report.

    settings.py   DemoSettings (validated, round-trips via dicts)
    offline.py    session, prune_session, C library, per-frame timing (reused, not redone)
    online.py     serve / listen / replay --credit as real subprocesses on loopback
    report.py     the final table, report.html (self-contained), results.json
    run.py        the stages in order, a progress line each
    cli.py        `neurogrs demo` and `python -m neurogrs.demo`
"""
from neurogrs.demo.cli import main
from neurogrs.demo.settings import DemoSettings

__all__ = ["main", "DemoSettings", "run_demo"]


def run_demo(*args, **kwargs):
    from neurogrs.demo.run import run_demo as _run

    return _run(*args, **kwargs)
