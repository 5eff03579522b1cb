"""The max-sustained search of `bench service` (synthetic trials: no runs) and how the table
reports it and the soak's misses."""
from __future__ import annotations

import pytest

from neurogrs.bench.rate_search import describe, search_max_rate
from neurogrs.bench.service import format_table
from neurogrs.errors import ConfigError


def _capacity(limit, seen=None):
    def sustains(rate):
        if seen is not None:
            seen.append(rate)
        return rate <= limit
    return sustains


@pytest.mark.parametrize("limit", [2000, 2600, 20_000, 37_000, 99_000])
def test_search_finds_the_maximum_within_its_resolution(limit):
    s = search_max_rate(_capacity(limit), start=2000, upper=160_000)
    assert s.best is not None and s.best <= limit < s.first_failure
    assert s.first_failure - s.best <= max(500, 0.1 * s.best)
    assert not s.hit_upper and not s.exhausted
    assert len(s.trials) <= 16
    assert all(ok == (r <= limit) for r, ok in s.trials)


def test_search_goes_beyond_the_old_ladder_top():
    s = search_max_rate(_capacity(45_000), start=2000, upper=160_000)
    assert s.best > 20_000  # the old ladder stopped at 20,000 and called it the maximum


def test_search_says_when_it_hit_its_upper_bound():
    seen = []
    s = search_max_rate(_capacity(10**9, seen), start=2000, upper=50_000)
    assert s.hit_upper and s.best == 50_000 and s.first_failure is None
    assert seen == [2000, 4000, 8000, 16_000, 32_000, 50_000]
    assert "HIT ITS UPPER BOUND" in describe(s, "x") and ">= 50000" in describe(s, "x")


def test_search_goes_down_when_the_start_fails():
    s = search_max_rate(_capacity(700), start=2000, upper=160_000, floor=500, step=100)
    assert s.best is not None and s.best <= 700 < s.first_failure
    s = search_max_rate(_capacity(100), start=2000, upper=160_000, floor=500)
    assert s.best is None and s.first_failure == 500
    assert "none: even 500 frames/s failed" in describe(s, "x")


def test_search_is_bounded_by_max_trials():
    s = search_max_rate(_capacity(37_123), start=2000, upper=160_000, step=1, resolution=1e-6,
                        max_trials=8)
    assert len(s.trials) == 8 and s.exhausted
    assert "run limit" in describe(s, "x")


@pytest.mark.parametrize("kw", [{"start": 0}, {"upper": 1000}, {"resolution": 0},
                                {"max_trials": 0}, {"floor": 5000}])
def test_search_arguments_validated(kw):
    args = {"start": 2000, "upper": 160_000} | kw
    with pytest.raises(ConfigError):
        search_max_rate(_capacity(1), **args)


# ------------------------------------------------------------------ the table
def _row(run, **kw):
    row = {"target": "service", "run": run, "sent": 1000, "received": 1000, "lost": 0,
           "reported": 0, "unaccounted": 0, "misses": 0, "late": 0, "skipped": 0,
           "errors": {}, "p50_ms": 0.2, "p99_ms": 0.3, "p999_ms": 0.4, "max_ms": 0.5,
           "rate_fps": 1000.0, "cpu_us": 50.0, "replay_rate_fps": 1000.0, "hwm_waits": 0}
    return row | kw


def _results(search, soak=None):
    return {"config": {"engine": "c", "deadline_ms": 100.0}, "runs": [], "ladder": [],
            "soak": soak, "max_sustained_fps": search.best if search else None,
            "search": search.to_dict() if search else None}


def test_table_says_the_search_hit_its_upper_bound():
    s = search_max_rate(_capacity(10**9), start=2000, upper=64_000)
    table = format_table(_results(s))
    assert ">= 64000 frames/s" in table and "HIT ITS UPPER BOUND" in table


def test_table_gives_the_maximum_and_the_first_failure():
    s = search_max_rate(_capacity(37_000), start=2000, upper=160_000)
    table = format_table(_results(s))
    assert f"{s.best} frames/s (first failure at {s.first_failure} frames/s" in table


def test_soak_line_prints_every_kind_of_miss():
    soak = _row("soak@7000", sent=1_000_000, received=990_000, lost=10_000, reported=9_990,
                unaccounted=10, misses=2492, late=2400, skipped=990,
                errors={"stale": 8000, "too_many_sessions": 1000}, rss_start_mb=44.0,
                rss_end_mb=45.0, rss_tenths_mb=[])
    table = format_table(_results(None, soak))
    line = next(x for x in table.splitlines() if x.startswith("soak: 1000000"))
    for part in ("lost 10000", "stale 8000", "too_many_sessions 1000", "skipped 990",
                 "unaccounted 10", "late 2400", "deadline misses 2492"):
        assert part in line, (part, line)


def test_table_says_why_the_first_failure_failed():
    from neurogrs.bench.service import sustained

    s = search_max_rate(_capacity(32_000), start=2000, upper=160_000)
    ladder = []
    for rate, ok in s.trials:
        r = _row(f"{rate}fps", replay_rate_fps=float(rate), p99_ms=1.0 if ok else 29.3)
        assert sustained(r, rate, 100.0) == ok
        ladder.append(r)
    res = _results(s) | {"ladder": ladder}
    assert f"at {s.first_failure} frames/s: p99 29.3 ms > 25 ms" in format_table(res)
