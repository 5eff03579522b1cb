"""Design selection (§5): constraints on some metrics, an objective on the rest.

    select(candidates, constraints="acc>=0.97*orig", minimize="flops+params")
    select(candidates, constraints="flops<=5000, params<=2000", maximize="acc")

Expressions are parsed with `ast` and walked against a whitelist (numbers, the names
below, + - * /, unary minus, comparisons); nothing is ever `eval`ed. Names, all from the
validation part D_V or from counting (the test part never enters selection):

    acc                the decision metric on D_V (balanced accuracy by default)
    accuracy, balanced_accuracy     on D_V
    flops, params, nonzero_params, effective_flops
    orig, orig_accuracy, orig_balanced_accuracy, orig_flops, orig_params
                       the same numbers of the candidate's initial (unpruned) model

Default (no constraint, no objective): the best `acc`; ties go to fewer FLOPs, then fewer
parameters, then the name.
"""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any

from neurogrs.errors import ConfigError

__all__ = ["NAMES", "Candidate", "Constraint", "Selection", "parse_constraints",
           "parse_objective", "select"]

_PER_MODEL = ("acc", "accuracy", "balanced_accuracy", "flops", "params", "nonzero_params",
              "effective_flops")
NAMES = _PER_MODEL + ("orig", "orig_accuracy", "orig_balanced_accuracy", "orig_flops",
                      "orig_params")

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {ast.Lt: ("<", operator.lt), ast.LtE: ("<=", operator.le),
            ast.Gt: (">", operator.gt), ast.GtE: (">=", operator.ge)}
_OPS = dict(_COMPARE.values())  # symbol -> function
_ALLOWED = f"numbers, names {', '.join(NAMES)}, + - * /, and < <= > >= in constraints"


@dataclass(frozen=True)
class Candidate:
    """One pruned model as selection sees it: a name and numbers (D_V and counts only)."""

    name: str
    values: dict[str, float]

    def __post_init__(self) -> None:
        missing = [n for n in NAMES if n not in self.values]
        if missing:
            raise ConfigError(f"candidate {self.name!r} lacks value(s) {missing}")


def _check(node: ast.AST, text: str) -> None:
    """Refuse anything outside the arithmetic whitelist (names the offending piece)."""
    def bad(n: ast.AST, why: str) -> ConfigError:
        piece = ast.get_source_segment(text, n) or type(n).__name__
        return ConfigError(f"in {text!r}: {piece!r} {why}; allowed: {_ALLOWED}")

    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise bad(node, "uses an operator that is not allowed")
        _check(node.left, text)
        _check(node.right, text)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise bad(node, "uses an operator that is not allowed")
        _check(node.operand, text)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise bad(node, "is not a number")
    elif isinstance(node, ast.Name):
        if node.id not in NAMES:
            raise bad(node, "is not a known name")
    else:
        raise bad(node, "is not allowed")


def _value(node: ast.AST, values: dict[str, float]) -> float:
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left, values), _value(node.right, values)
        if isinstance(node.op, ast.Div) and right == 0:
            return float("inf") if left > 0 else float("-inf") if left < 0 else float("nan")
        return float(_BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        return float(_UNARY[type(node.op)](_value(node.operand, values)))
    if isinstance(node, ast.Constant):
        return float(node.value)
    return float(values[node.id])  # ast.Name, checked by _check


def _parse(text: str) -> ast.AST:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"empty selection expression {text!r}")
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ConfigError(f"{text!r} is not a valid expression ({exc.msg}); "
                          f"allowed: {_ALLOWED}") from None


@dataclass(frozen=True)
class Constraint:
    text: str
    left: ast.AST
    op: str
    right: ast.AST

    def sides(self, values: dict[str, float]) -> tuple[float, float]:
        return _value(self.left, values), _value(self.right, values)

    def holds(self, values: dict[str, float]) -> bool:
        left, right = self.sides(values)
        return bool(_OPS[self.op](left, right))

    def miss(self, values: dict[str, float]) -> float:
        """How far the left side is from satisfying the constraint (0 when it holds)."""
        if self.holds(values):
            return 0.0
        left, right = self.sides(values)
        return abs(left - right)


def parse_constraints(text: str | None) -> list[Constraint]:
    """'acc>=0.97*orig, flops<=5000' -> constraints (chains such as 0.9<=acc<=1 split)."""
    if text is None or not text.strip():
        return []
    out: list[Constraint] = []
    for part in text.split(","):
        part = part.strip()
        node = _parse(part)
        if not isinstance(node, ast.Compare):
            raise ConfigError(f"constraint {part!r} must compare, e.g. 'acc>=0.97*orig' "
                              "(use --minimize/--maximize for an objective)")
        terms = [node.left, *node.comparators]
        for term in terms:
            _check(term, part)
        for op, left, right in zip(node.ops, terms[:-1], terms[1:]):
            if type(op) not in _COMPARE:
                raise ConfigError(f"constraint {part!r}: only < <= > >= compare (not "
                                  f"{type(op).__name__})")
            out.append(Constraint(part, left, _COMPARE[type(op)][0], right))
    return out


def parse_objective(text: str) -> ast.AST:
    """'0.5*flops+params' -> a checked expression tree."""
    node = _parse(text)
    if isinstance(node, ast.Compare):
        raise ConfigError(f"objective {text!r} must be an expression, not a comparison "
                          "(comparisons go in --select)")
    _check(node, text)
    return node


@dataclass(frozen=True)
class Selection:
    chosen: Candidate
    objective: str
    feasible: list[str]
    table: list[dict[str, Any]]  # every candidate: name, values, feasible, score

    def to_dict(self) -> dict:
        return {"chosen": self.chosen.name, "objective": self.objective,
                "feasible": self.feasible, "candidates": self.table}


def select(candidates: list[Candidate], constraints: str | None = None,
           minimize: str | None = None, maximize: str | None = None) -> Selection:
    """The best feasible candidate; a clear error naming the closest when none is feasible."""
    if not candidates:
        raise ConfigError("no candidate models to select from")
    if minimize and maximize:
        raise ConfigError("give --minimize or --maximize, not both")
    rules = parse_constraints(constraints)
    text = minimize or maximize or "acc"
    sign = 1.0 if minimize else -1.0  # minimise sign * objective
    objective = parse_objective(text)
    table, feasible = [], []
    for c in candidates:
        ok = all(r.holds(c.values) for r in rules)
        score = _value(objective, c.values)
        table.append({"name": c.name, "feasible": ok, "score": score})
        if ok:
            feasible.append(c)
    if not feasible:
        raise ConfigError(_closest_message(candidates, rules))
    chosen = min(feasible, key=lambda c: (sign * _value(objective, c.values),
                                          c.values["flops"], c.values["params"], c.name))
    return Selection(chosen, ("minimize " if minimize else "maximize ") + text,
                     [c.name for c in feasible], table)


def _closest_message(candidates: list[Candidate], rules: list[Constraint]) -> str:
    def relative(c: Candidate) -> float:
        return sum(r.miss(c.values) / max(abs(r.sides(c.values)[1]), 1e-12) for r in rules)

    best = min(candidates, key=lambda c: (relative(c), c.name))
    misses = []
    for r in rules:
        if not r.holds(best.values):
            left, right = r.sides(best.values)
            misses.append(f"{r.text!r}: {left:.6g} vs {right:.6g} (misses by "
                          f"{r.miss(best.values):.4g})")
    return (f"no candidate meets the constraints {', '.join(sorted({r.text for r in rules}))}; "
            f"the closest is {best.name}: " + "; ".join(misses))
