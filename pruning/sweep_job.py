"""One sweep job in its own process: a job as JSON on stdin, its result as JSON on stdout.

`neurogrs.pruning.sweep.run_local` starts this with the threads pinned (`PINNED_ENV`).
"""
from __future__ import annotations

import json
import os
import sys

from neurogrs.pruning.sweep import CPU_ENV, run_job_json


def main() -> int:
    cpu = os.environ.get(CPU_ENV)
    if cpu is not None:
        os.sched_setaffinity(0, {int(cpu)})
    result = run_job_json(sys.stdin.read())
    sys.stdout.write("\n" + result + "\n")
    return 0 if json.loads(result)["status"] == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
