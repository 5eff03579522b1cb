"""The portable kernel sets of the generated C: "vector4" (GCC/Clang 4-wide vector types,
mul + add) and "plain" (C99 loops), chosen by `#if USE_VECTORS` inside each layer
function, plus the zero-skipping sparse code, MaxPool2D and the in-place ReLU / softmax.

Each function returns C lines (or text) for one layer; `emitter.py` decides which to emit
and where the weights go. Loops keep the axpy order (inputs outside, outputs inside), so
GCC vectorises them at -O3 without -ffast-math and without reassociation.
"""
from __future__ import annotations

import numpy as np

from neurogrs.codegen.literals import c_array, c_int, index_ctype
from neurogrs.codegen.names import c_float
from neurogrs.codegen.options import SPLIT_MAX_VECTORS

__all__ = [
    "relu_stmt",
    "vector_body",
    "sparse_dot",
    "sparse_lists",
    "dense_body",
    "dense_sparse_body",
    "conv_pixel_function",
    "conv_body",
    "conv_sparse_body",
    "maxpool_function",
    "activation_functions",
]


def relu_stmt(var: str) -> str:
    """`var = max(var, 0)` as a C statement."""
    return f"{var} = {var} > 0.0f ? {var} : 0.0f;"


def vector_body(i: int, rows: int, n_out: int, read: str, relu: bool,
                 stride: int) -> list[str]:
    """acc[o] = bias[o] + sum_k kernel_row_k[o] * input_k, 4 outputs per vector.

    `read` is the C expression of input k with `{k}` for the row. When a row has at most
    4 vectors, even and odd rows go to two accumulator sets so the additions of
    consecutive rows do not wait on each other (4-cycle add latency).
    """
    q = (n_out + 3) // 4
    split = q <= SPLIT_MAX_VECTORS and rows >= 2
    lines = [
        f"    const vec4 *w = (const vec4 *)layer{i}_kernel; "
        f"/* row k: vectors w[k * {stride}] .. */",
        f"    vec4 acc[{q}];",
    ]
    if split:
        lines.append(f"    vec4 acc2[{q}];")
    lines += [f"    for (int q = 0; q < {q}; ++q) {{",
              f"        acc[q] = ((const vec4 *)layer{i}_bias)[q];"]
    if split:
        lines.append("        acc2[q] = (vec4){0.0f, 0.0f, 0.0f, 0.0f};")
    lines.append("    }")
    if split:
        lines += [
            f"    for (int k = 0; k + 1 < {rows}; k += 2) {{",
            f"        const float s = {read.format(k='k')};",
            f"        const float t = {read.format(k='k + 1')};",
            "        const vec4 vs = {s, s, s, s};",
            "        const vec4 vt = {t, t, t, t};",
            f"        for (int q = 0; q < {q}; ++q) {{",
            f"            acc[q] += w[k * {stride} + q] * vs;",
            f"            acc2[q] += w[(k + 1) * {stride} + q] * vt;",
            "        }",
            "    }",
        ]
        if rows % 2:
            lines += [
                "    {",
                f"        const float s = {read.format(k=str(rows - 1))};",
                "        const vec4 vs = {s, s, s, s};",
                f"        for (int q = 0; q < {q}; ++q) {{",
                f"            acc[q] += w[{(rows - 1) * stride} + q] * vs;",
                "        }",
                "    }",
            ]
        lines += [f"    for (int q = 0; q < {q}; ++q) {{", "        acc[q] += acc2[q];", "    }"]
    else:
        lines += [
            f"    for (int k = 0; k < {rows}; ++k) {{",
            f"        const float s = {read.format(k='k')};",
            "        const vec4 vs = {s, s, s, s};",
            f"        for (int q = 0; q < {q}; ++q) {{",
            f"            acc[q] += w[k * {stride} + q] * vs;",
            "        }",
            "    }",
        ]
    lines += [
        "    {",
        "        const float *r = (const float *)acc;",
        f"        for (int o = 0; o < {n_out}; ++o) {{",
        f"            y[o] = {'r[o] > 0.0f ? r[o] : 0.0f' if relu else 'r[o]'};",
        "        }",
        "    }",
    ]
    return lines


def sparse_dot(i: int, x: str, pad: str) -> list[str]:
    """acc = bias[o] + sum of the nonzero weights of output o times their inputs.

    Four partial sums, so consecutive additions do not wait on each other."""
    v, ix = f"layer{i}_value", f"layer{i}_index"
    return [pad + line for line in (
        f"const int end = layer{i}_start[o + 1];",
        f"int k = layer{i}_start[o];",
        f"float a0 = layer{i}_bias[o], a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;",
        "float acc;",
        "for (; k + 3 < end; k += 4) {",
        f"    a0 += {v}[k] * {x}[{ix}[k]];",
        f"    a1 += {v}[k + 1] * {x}[{ix}[k + 1]];",
        f"    a2 += {v}[k + 2] * {x}[{ix}[k + 2]];",
        f"    a3 += {v}[k + 3] * {x}[{ix}[k + 3]];",
        "}",
        "for (; k < end; ++k) {",
        f"    a0 += {v}[k] * {x}[{ix}[k]];",
        "}",
        "acc = (a0 + a1) + (a2 + a3);",
    )]


def sparse_lists(i: int, w2d: np.ndarray, offsets: np.ndarray | None = None,
                 unit: str = "output", index_doc: str = "input offset") -> list[str]:
    """Per-output lists of the nonzero weights of w2d [rows, out] as three C arrays:
    layer<i>_start (where output o's list starts), layer<i>_index (offsets[k] of row k, or
    k itself without offsets) and layer<i>_value. `unit` and `index_doc` word the comments
    ("output" / "input offset" for Dense, "filter" / the window offset for Conv2D)."""
    rows, n_out = w2d.shape
    if offsets is None:
        offsets = np.arange(rows)
    starts = [0]
    idx: list[int] = []
    val: list[float] = []
    for o in range(n_out):
        nz = np.flatnonzero(w2d[:, o])
        idx.extend(int(offsets[k]) for k in nz)
        val.extend(float(v) for v in w2d[nz, o])
        starts.append(len(idx))
    if not idx:  # an all-zero layer: C has no zero-length arrays
        idx, val = [0], [0.0]
    return [
        c_array("int", f"layer{i}_start", np.asarray(starts), c_int,
                f"layer {i}: nonzero weights of {unit} o are start[o] .. start[o + 1] - 1"),
        c_array(index_ctype(int(offsets.max()) + 1), f"layer{i}_index", np.asarray(idx),
                c_int, f"layer {i}: {index_doc} of each nonzero weight"),
        c_array("float", f"layer{i}_value", np.asarray(val, np.float32), c_float,
                f"layer {i}: value of each nonzero weight"),
    ]


def dense_body(i: int, n_in: int, n_out: int, relu: bool, n_pad: int) -> list[str]:
    """Dense layer body, vector4 and plain: y = x K + b with padded [in][n_pad] weights."""
    vector = vector_body(i, n_in, n_out, "x[{k}]", relu, n_pad // 4)
    body = [
        f"    for (int o = 0; o < {n_out}; ++o) {{",
        f"        y[o] = layer{i}_bias[o];",
        "    }",
        f"    for (int i = 0; i < {n_in}; ++i) {{",
        "        const float xi = x[i];",
        "        if (xi == 0.0f) {",
        "            continue; /* adds nothing (common after ReLU) */",
        "        }",
        f"        for (int o = 0; o < {n_out}; ++o) {{",
        f"            y[o] += layer{i}_kernel[i][o] * xi;",
        "        }",
        "    }",
    ]
    if relu:
        body += [f"    for (int o = 0; o < {n_out}; ++o) {{",
                 f"        {relu_stmt('y[o]')}", "    }"]
    return ["#if USE_VECTORS", *vector, "#else", *body, "#endif"]


def dense_sparse_body(i: int, n_out: int, relu: bool) -> list[str]:
    """Dense layer body, zero-skipping: each output sums only its nonzero weights."""
    body = [
        f"    for (int o = 0; o < {n_out}; ++o) {{",
        *sparse_dot(i, "x", "        "),
        f"        {relu_stmt('acc') if relu else ''}".rstrip(),
        "        y[o] = acc;",
        "    }",
    ]
    return [b for b in body if b.strip()]


def _pixel_loops(out_shape) -> list[str]:
    """The two loops over output pixels, yo pointing at the pixel's outputs."""
    ho, wo, cout = out_shape
    return [
        f"    for (int r = 0; r < {ho}; ++r) {{",
        f"        for (int c = 0; c < {wo}; ++c) {{",
        f"            float *restrict yo = y + (r * {wo} + c) * {cout};",
    ]


def conv_pixel_function(i: int, offsets: np.ndarray, cout: int, relu: bool,
                        c_pad: int) -> str:
    """vector4 only: layer<i>_offset (window offset of each kernel row) and
    layer<i>_pixel, one output pixel whose window starts at x."""
    return "\n".join([
        "#if USE_VECTORS",
        c_array("int", f"layer{i}_offset", offsets, c_int,
                f"layer {i}: offset in the input window of kernel row (i, j, ci)")
        .rstrip("\n"),
        "",
        f"/* layer {i}, one output pixel: x is the top-left corner of its window */",
        f"static void layer{i}_pixel(const float *restrict x, float *restrict y)",
        "{",
        *vector_body(i, len(offsets), cout, f"x[layer{i}_offset[{{k}}]]", relu, c_pad // 4),
        "}",
        "#endif",
        "",
    ])


def conv_body(i: int, in_shape, out_shape, kh: int, kw: int, strides, relu: bool) -> list[str]:
    """Valid Conv2D body, vector4 (layer<i>_pixel per output pixel) and plain."""
    _, w, cin = in_shape
    ho, wo, cout = out_shape
    sh, sw = strides
    vector = [
        f"    for (int r = 0; r < {ho}; ++r) {{",
        f"        for (int c = 0; c < {wo}; ++c) {{",
        f"            layer{i}_pixel(x + ((r * {sh}) * {w} + c * {sw}) * {cin}, "
        f"y + (r * {wo} + c) * {cout});",
        "        }",
        "    }",
    ]
    body = _pixel_loops(out_shape) + [
        f"            for (int o = 0; o < {cout}; ++o) {{",
        f"                yo[o] = layer{i}_bias[o];",
        "            }",
        f"            for (int i = 0; i < {kh}; ++i) {{",
        f"                for (int j = 0; j < {kw}; ++j) {{",
        f"                    const float *xp = x + ((r * {sh} + i) * {w} + "
        f"(c * {sw} + j)) * {cin};",
        f"                    for (int ci = 0; ci < {cin}; ++ci) {{",
        "                        const float v = xp[ci];",
        f"                        for (int o = 0; o < {cout}; ++o) {{",
        f"                            yo[o] += layer{i}_kernel[i][j][ci][o] * v;",
        "                        }",
        "                    }",
        "                }",
        "            }",
    ]
    if relu:
        body += [f"            for (int o = 0; o < {cout}; ++o) {{",
                 f"                {relu_stmt('yo[o]')}", "            }"]
    body += ["        }", "    }"]
    return ["#if USE_VECTORS", *vector, "#else", *body, "#endif"]


def conv_sparse_body(i: int, in_shape, out_shape, strides, relu: bool) -> list[str]:
    """Valid Conv2D body, zero-skipping: each filter sums only its nonzero weights."""
    _, w, cin = in_shape
    cout = out_shape[2]
    sh, sw = strides
    body = _pixel_loops(out_shape) + [
        f"            const float *xp = x + ((r * {sh}) * {w} + c * {sw}) * {cin};",
        f"            for (int o = 0; o < {cout}; ++o) {{",
        *sparse_dot(i, "xp", "                "),
    ]
    if relu:
        body.append(f"                {relu_stmt('acc')}")
    body += ["                yo[o] = acc;", "            }", "        }", "    }"]
    return body


def maxpool_function(i: int, in_shape, out_shape, pool_size, strides) -> str:
    """layer<i>_maxpool: valid MaxPool2D, plain loops (every kernel set)."""
    h, w, ch = in_shape
    ho, wo, _ = out_shape
    ph, pw = pool_size
    sh, sw = strides
    body = [
        f"    for (int r = 0; r < {ho}; ++r) {{",
        f"        for (int c = 0; c < {wo}; ++c) {{",
        f"            float *restrict yo = y + (r * {wo} + c) * {ch};",
        f"            const float *x0 = x + ((r * {sh}) * {w} + c * {sw}) * {ch};",
        f"            for (int k = 0; k < {ch}; ++k) {{",
        "                yo[k] = x0[k];",
        "            }",
        f"            for (int i = 0; i < {ph}; ++i) {{",
        f"                for (int j = 0; j < {pw}; ++j) {{",
        f"                    const float *xp = x0 + (i * {w} + j) * {ch};",
        f"                    for (int k = 0; k < {ch}; ++k) {{",
        "                        yo[k] = xp[k] > yo[k] ? xp[k] : yo[k];",
        "                    }",
        "                }",
        "            }",
        "        }",
        "    }",
    ]
    title = (f"layer {i}: MaxPool2D {h}x{w}x{ch} -> {ho}x{wo}x{ch}, pool {ph}x{pw}, "
             f"strides {sh}x{sw}, valid")
    return "\n".join(
        [f"/* {title} */",
         f"static void layer{i}_maxpool(const float *restrict x, float *restrict y)",
         "{", *body, "}", ""])

def activation_functions(need_relu: bool, need_softmax: bool) -> str:
    """The in-place relu() and softmax() that layer calls use, when needed."""
    out = []
    if need_relu:
        out.append("\n".join([
            "/* ReLU in place */",
            "static void relu(float *x, int n)",
            "{",
            "    for (int k = 0; k < n; ++k) {",
            f"        {relu_stmt('x[k]')}",
            "    }",
            "}",
            "",
        ]))
    if need_softmax:
        out.append("\n".join([
            "/* softmax in place: exp(x - max) / sum */",
            "static void softmax(float *x, int n)",
            "{",
            "    float m = x[0];",
            "    float s = 0.0f;",
            "    for (int k = 1; k < n; ++k) {",
            "        m = x[k] > m ? x[k] : m;",
            "    }",
            "    for (int k = 0; k < n; ++k) {",
            "        x[k] = expf(x[k] - m);",
            "        s += x[k];",
            "    }",
            "    for (int k = 0; k < n; ++k) {",
            "        x[k] /= s;",
            "    }",
            "}",
            "",
        ]))
    return "\n".join(out)
