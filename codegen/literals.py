"""C literals for the model's numbers: `static const` arrays (8 values a line, nested
braces, a shape comment), integers, the smallest index type, and the zero-padding of
output axes that the vector kernels rely on.

Identifiers and text (prefix, model name, labels) and the float literal itself are in
`names.py`; this module formats arrays of them.
"""
from __future__ import annotations

import numpy as np

from neurogrs.codegen.options import PAD

__all__ = ["VALUES_PER_LINE", "c_array", "c_int", "index_ctype", "pad_outputs"]

VALUES_PER_LINE = 8


def _fmt_values(values: np.ndarray, fmt) -> list[str]:
    return [fmt(v) for v in values.tolist()]


def c_array(ctype: str, name: str, arr: np.ndarray, fmt, comment: str,
            align: bool = False) -> str:
    """`static const ctype name[d0][d1]... = {...};` with nested braces, 8 values a line."""
    dims = "".join(f"[{d}]" for d in arr.shape)
    attr = " VEC_ALIGN" if align else ""
    lines = [f"/* {comment} */", f"static const {ctype} {name}{dims}{attr} = {{"]

    def emit(a: np.ndarray, depth: int) -> None:
        pad = "    " * depth
        if a.ndim == 1:
            vals = _fmt_values(a, fmt)
            for k in range(0, len(vals), VALUES_PER_LINE):
                lines.append(pad + ", ".join(vals[k:k + VALUES_PER_LINE]) + ",")
            return
        for sub in a:
            lines.append(pad + "{")
            emit(sub, depth + 1)
            lines.append(pad + "},")
    emit(arr, 1)
    lines.append("};")
    return "\n".join(lines) + "\n"


def c_int(v: int) -> str:
    """An integer literal."""
    return str(int(v))


def index_ctype(max_value: int) -> str:
    """The C type of an index array whose values stay below max_value."""
    return "unsigned short" if max_value < 65536 else "int"


def pad_outputs(arr: np.ndarray) -> np.ndarray:
    """Zero-pad the last axis to a multiple of PAD floats."""
    n = arr.shape[-1]
    pad = (-n) % PAD
    if pad == 0:
        return arr
    widths = [(0, 0)] * (arr.ndim - 1) + [(0, pad)]
    return np.pad(arr, widths)
