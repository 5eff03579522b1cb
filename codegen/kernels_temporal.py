"""The stateful layers in generated C (temporal context; numpy reference and state layout
in neurogrs/layers_temporal.py): the layer functions come from `templates/layer_*.c.tmpl`,
their constants from here, and each layer's state becomes one member of the
`<prefix>_state` struct, `float layer<i>[1 + values]`, laid out like the reference's
vector. The arithmetic is the reference's, in float32 and in the same order (the library
is built with -std=c99, which keeps multiply and add separate).
"""
from __future__ import annotations

from importlib import resources
from string import Template

import numpy as np

from neurogrs.codegen.literals import c_array
from neurogrs.codegen.names import c_float
from neurogrs.layers_temporal import ForwardFilter, LeakyTraces

__all__ = ["StateMember", "traces_code", "filter_code"]


class StateMember:
    """One member of the state struct: float <name>[<floats>] and what it holds."""

    def __init__(self, name: str, floats: int, comment: str) -> None:
        self.name, self.floats, self.comment = name, floats, comment

    def declaration(self) -> str:
        return f"    float {self.name}[{self.floats}]; /* {self.comment} */"


def _template(name: str) -> Template:
    return Template(resources.files("neurogrs.codegen").joinpath("templates", name).read_text())


def traces_code(i: int, layer: LeakyTraces, n_in: int) -> tuple[list[str], str, StateMember]:
    """(weights, layer function, state member) of LeakyTraces over n_in elements."""
    m = layer.m
    gain = (np.float32(1) - layer.decays).astype(np.float32)
    weights = [
        c_array("float", f"layer{i}_decay", layer.decays, c_float,
                f"layer {i} LeakyTraces decays [{m}]"),
        c_array("float", f"layer{i}_gain", gain, c_float,
                f"layer {i} LeakyTraces gains 1 - decay, float32 [{m}]"),
    ]
    pad = " " * 12
    locals_ = "\n".join(
        f"    const float d{j} = layer{i}_decay[{j}], g{j} = layer{i}_gain[{j}];"
        for j in range(m))
    first = "\n".join(f"{pad}y[e * {1 + m} + {1 + j}] = s[e * {m} + {j}] = xe;"
                       for j in range(m))
    update = "\n".join(f"{pad}y[e * {1 + m} + {1 + j}] = s[e * {m} + {j}] = "
                        f"d{j} * s[e * {m} + {j}] + g{j} * xe;" for j in range(m))
    code = _template("layer_traces.c.tmpl").substitute(
        I=i, N=n_in, M=m, M1=1 + m, N_OUT=n_in * (1 + m), DECAY_LOCALS=locals_,
        FIRST=first, UPDATE=update)
    member = StateMember(f"layer{i}", 1 + n_in * m,
                         f"layer {i} LeakyTraces: primed flag, then {n_in} x {m} traces")
    return weights, code, member


def filter_code(i: int, layer: ForwardFilter) -> tuple[list[str], str, StateMember]:
    """(weights, layer function, state member) of ForwardFilter."""
    k = int(layer.prior.shape[0])
    weights = [
        c_array("float", f"layer{i}_transition", layer.transition, c_float,
                f"layer {i} ForwardFilter transition [from={k}][to={k}]"),
        c_array("float", f"layer{i}_prior", layer.prior, c_float,
                f"layer {i} ForwardFilter class prior [{k}]"),
    ]
    code = _template("layer_filter.c.tmpl").substitute(I=i, K=k)
    member = StateMember(f"layer{i}", 1 + k,
                         f"layer {i} ForwardFilter: primed flag, then {k} beliefs")
    return weights, code, member
