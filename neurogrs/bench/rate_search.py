"""The search for the maximum sustained rate of `bench service`: up until a rate fails,
then bisect. Pure: the caller runs each trial (`sustains(rate) -> bool`); tests use
synthetic ones.

- Doubling from `start` until a rate fails or `upper` is reached (then `hit_upper`: the
  true maximum may be higher, and the table says so instead of pretending it is measured).
- If `start` itself fails, halving down to `floor` (a slow machine still gets a number).
- Then bisection between the highest pass and the lowest failure, on multiples of `step`,
  until they are within `resolution` (relative) of each other.
- At most `max_trials` trials in all (each one is a paced run of a few seconds).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from neurogrs.errors import ConfigError

__all__ = ["RateSearch", "search_max_rate", "describe"]


@dataclass
class RateSearch:
    best: int | None  # highest rate sustained (None: even `floor` failed)
    first_failure: int | None  # lowest rate that failed (None: none failed)
    hit_upper: bool  # `upper` was sustained: the search stopped there, not at a failure
    upper: int
    floor: int
    trials: list[tuple[int, bool]] = field(default_factory=list)  # (rate, sustained) in order
    exhausted: bool = False  # stopped by max_trials before reaching `resolution`

    def to_dict(self) -> dict:
        return asdict(self)


def search_max_rate(sustains: Callable[[int], bool], start: int, upper: int, *,
                    floor: int | None = None, step: int = 500, resolution: float = 0.1,
                    max_trials: int = 16) -> RateSearch:
    """Highest rate (frames/s, a multiple of `step` unless `start`/`upper` are not) for
    which `sustains(rate)` is true, searching as the module docstring says."""
    floor = step if floor is None else floor
    if not 0 < step <= floor <= start <= upper:
        raise ConfigError(f"rate search needs 0 < step ({step}) <= floor ({floor}) <= start "
                          f"({start}) <= upper ({upper})")
    if not 0 < resolution < 1 or max_trials < 1:
        raise ConfigError(f"resolution must be in (0, 1) and max_trials >= 1, got "
                          f"{resolution}, {max_trials}")
    res = RateSearch(None, None, False, upper, floor)

    def trial(rate: int) -> bool | None:
        if len(res.trials) >= max_trials:
            res.exhausted = True
            return None
        ok = bool(sustains(rate))
        res.trials.append((rate, ok))
        if ok:
            res.best = rate if res.best is None else max(res.best, rate)
        elif res.first_failure is None or rate < res.first_failure:
            res.first_failure = rate
        return ok

    rate = start
    ok = trial(rate)
    if ok:  # up: double until a failure or the upper bound
        while ok and rate < upper:
            rate = min(rate * 2, upper)
            ok = trial(rate)
        res.hit_upper = bool(ok) and rate == upper
    else:  # down: halve until a pass or the floor
        while ok is False and rate > floor:
            rate = max(rate // 2, floor)
            ok = trial(rate)
    # bisect between the highest pass and the lowest failure
    while res.best is not None and res.first_failure is not None:
        lo, hi = res.best, res.first_failure
        if hi - lo <= max(step, resolution * lo):
            break
        mid = int(round((lo + hi) / 2 / step)) * step
        if not lo < mid < hi or trial(mid) is None:
            break
    return res


def describe(search: RateSearch | dict | None, criterion: str) -> str:
    """One line for the table: the result and how the search ended."""
    if search is None:
        return f"max sustained ({criterion}): not searched"
    s = search if isinstance(search, dict) else search.to_dict()
    tried = len(s["trials"])
    if s["best"] is None:
        return (f"max sustained ({criterion}): none: even {s['floor']} frames/s failed "
                f"({tried} runs)")
    if s["hit_upper"]:
        return (f"max sustained ({criterion}): >= {s['best']} frames/s: the search HIT ITS "
                f"UPPER BOUND ({s['upper']} frames/s; raise it to find the maximum; "
                f"{tried} runs)")
    note = "; stopped by its run limit" if s["exhausted"] else ""
    return (f"max sustained ({criterion}): {s['best']} frames/s (first failure at "
            f"{s['first_failure']} frames/s; {tried} runs{note})")
