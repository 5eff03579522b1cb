"""Progress while pruning: a tqdm bar on a terminal, one plain line per iteration otherwise."""
from __future__ import annotations

import sys
from typing import TextIO

from neurogrs.pruning.search import Step

__all__ = ["PruneProgress"]


class PruneProgress:
    """Callable per iteration (`progress=` of grs/rrs/nwm); `close()` when done."""

    def __init__(self, desc: str, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.desc = desc
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(desc=desc, unit="it", file=self.stream, leave=False)

    def __call__(self, step: Step) -> None:
        if not self.enabled:
            return
        mark = "accepted" if step.accepted else "rejected"
        if self.bar is not None:
            self.bar.set_postfix_str(f"{step.structure} val {step.metric:.4f} {mark} "
                                     f"{step.elapsed_s:.0f}s")
            self.bar.update(1)
        else:
            cand = "-" if step.candidate_metric is None else f"{step.candidate_metric:.4f}"
            print(f"{self.desc} iteration {step.iteration} {mark} structure {step.structure} "
                  f"candidate {cand} val {step.metric:.4f} retrains {step.retrains} "
                  f"elapsed {step.elapsed_s:.1f}s", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
