import pytest

from neurogrs.errors import ConfigError
from neurogrs.pruning.selection import (
    NAMES,
    Candidate,
    parse_constraints,
    parse_objective,
    select,
)


def cand(name, acc, flops, params, orig=0.9):
    v = {n: 0.0 for n in NAMES}
    v.update(acc=acc, accuracy=acc, balanced_accuracy=acc, flops=flops, params=params,
             nonzero_params=params, effective_flops=flops, orig=orig, orig_flops=10_000,
             orig_params=5_000)
    return Candidate(name, v)


CANDS = [cand("a", 0.90, 1000, 500), cand("b", 0.88, 300, 100), cand("c", 0.80, 50, 20)]


def test_default_is_best_validation_metric():
    assert select(CANDS).chosen.name == "a"


def test_default_ties_go_to_fewer_flops():
    tied = [cand("x", 0.9, 900, 10), cand("y", 0.9, 100, 10)]
    assert select(tied).chosen.name == "y"


def test_constraint_and_weighted_objective():
    sel = select(CANDS, "acc>=0.97*orig", minimize="flops+params")
    assert sel.chosen.name == "b" and sel.feasible == ["a", "b"]
    assert select(CANDS, "acc >= 0.5", minimize="0.5*flops+params").chosen.name == "c"
    assert select(CANDS, "flops<=400, params<=200", maximize="acc").chosen.name == "b"
    assert select(CANDS, "0.85 <= acc <= 0.89").chosen.name == "b"  # chained


def test_none_feasible_names_the_closest_and_the_miss():
    with pytest.raises(ConfigError) as exc:
        select(CANDS, "acc>=0.95, flops<=2000")
    msg = str(exc.value)
    assert "the closest is a" in msg and "'acc>=0.95'" in msg and "misses by 0.05" in msg
    assert "flops<=2000" in msg  # listed among the constraints, but a meets it


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')",   # call
    "acc.__class__",                      # attribute
    "acc ** 2 > 1",                       # power
    "acc>=0.9 and flops<1",               # boolean op
    "test_accuracy >= 0.9",               # test part is not a selectable name
    "acc == 0.9",                         # equality is not offered
    "acc >= 'x'",                         # string
    "acc >=",                             # syntax
    "lambda: 1",
    "[acc][0] > 1",
])
def test_bad_constraints_refused_clearly(text):
    with pytest.raises(ConfigError) as exc:
        parse_constraints(text)
    assert "allowed" in str(exc.value) or "only < <= > >=" in str(exc.value) \
        or "must compare" in str(exc.value)


def test_bad_objectives_refused():
    for text in ("flops >= 1", "open('x')", "params if acc else flops", ""):
        with pytest.raises(ConfigError):
            parse_objective(text)
    with pytest.raises(ConfigError, match="not both"):
        select(CANDS, minimize="flops", maximize="acc")


def test_no_eval_is_used(monkeypatch):
    import builtins

    def boom(*a, **k):
        raise AssertionError("eval/exec must not be used")

    monkeypatch.setattr(builtins, "eval", boom)
    monkeypatch.setattr(builtins, "exec", boom)
    assert select(CANDS, "acc>=0.85", minimize="flops").chosen.name == "b"


def test_candidate_needs_every_name():
    with pytest.raises(ConfigError, match="lacks"):
        Candidate("z", {"acc": 1.0})
