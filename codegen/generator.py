"""Generate readable C99 from a ModelSpec: decoder.h, decoder.c, main.c, Makefile.

The templates in `templates/` own the structure of each file; this module fills them with
per-layer functions, `static const` weights and sizes. The generated decoder:

- runs one function per layer, ping-ponging between two stack buffers sized at generation
  time (no malloc, no mutable globals: thread-safe and reentrant);
- stores Dense kernels [in][out] and Conv2D kernels [kh][kw][c_in][c_out] and loops
  "inputs outside, outputs inside" (axpy), which GCC vectorises at -O3 without -ffast-math;
- for sparse (TQ) layers, optionally keeps only the nonzero weights as per-output index
  lists (chosen per layer by density, see `SPARSE_CROSSOVER`).

Everything that comes from the model but is not a number (name, labels) reaches the C
files only through `names.c_comment` / `names.c_string`; the prefix must pass
`names.c_identifier`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from neurogrs.codegen.names import c_comment, c_float, c_identifier, c_string
from neurogrs.errors import ConfigError, ModelError
from neurogrs.spec import (
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ModelSpec,
)

__all__ = [
    "GENERATOR_VERSION",
    "GENERATOR_ID",
    "SPARSE_MODES",
    "SPARSE_CROSSOVER",
    "CodegenOptions",
    "LayerPlan",
    "generate_sources",
    "write_sources",
    "generate_pyext",
]

# Bump when the generated code changes in a way that matters (it keys the C engine cache).
GENERATOR_VERSION = "1"
GENERATOR_ID = f"neurogrs-codegen/{GENERATOR_VERSION}"

SPARSE_MODES = ("auto", "dense", "sparse")
# In "auto" mode a Dense layer is emitted as zero-skipping code when at most this fraction
# of its weights is nonzero; Conv2D layers always get the dense vector code (sparse conv
# code never won, even at 3% density). Measured with `python -m neurogrs.codegen.crossover`
# (nn1 at N=273: sparse wins at <= 7% nonzero; run and table in docs/codegen.md).
SPARSE_CROSSOVER = 0.07

STATUS = (
    ("OK", "ok"),
    ("ERR_NULL", "null pointer argument"),
    ("ERR_COUNT", "negative frame count"),
    ("ERR_CLOCK", "clock_gettime failed"),
)

_VALUES_PER_LINE = 8
# Rows go to two accumulator sets when a layer has at most this many output vectors
# (more would not fit the 16 SSE registers together with the weights).
SPLIT_MAX_VECTORS = 4


@dataclass(frozen=True)
class CodegenOptions:
    """How to generate: the API prefix, and dense/sparse code for sparse layers."""

    prefix: str = "decoder"
    sparse: str = "auto"
    crossover: float = SPARSE_CROSSOVER

    def __post_init__(self) -> None:
        c_identifier(self.prefix, "prefix")
        if self.sparse not in SPARSE_MODES:
            raise ConfigError(f"sparse={self.sparse!r}: choose one of {SPARSE_MODES}")
        if not 0.0 <= float(self.crossover) <= 1.0:
            raise ConfigError(f"crossover={self.crossover!r} must lie in [0, 1]")

    def to_dict(self) -> dict:
        return {"prefix": self.prefix, "sparse": self.sparse, "crossover": float(self.crossover)}


@dataclass(frozen=True)
class LayerPlan:
    """What the generator decided for one layer (reported by `neurogrs codegen`)."""

    index: int
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    mode: str  # "dense" | "sparse" | "-" (no weights)
    density: float | None


# ------------------------------------------------------------------ formatting helpers
def _template(name: str) -> Template:
    text = resources.files("neurogrs.codegen").joinpath("templates", name).read_text()
    return Template(text)


def _fmt_values(values: np.ndarray, fmt) -> list[str]:
    return [fmt(v) for v in values.tolist()]


def _c_array(ctype: str, name: str, arr: np.ndarray, fmt, comment: str,
             align: bool = False) -> str:
    """`static const ctype name[d0][d1]... = {...};` with nested braces, 8 values a line."""
    dims = "".join(f"[{d}]" for d in arr.shape)
    attr = " VEC_ALIGN" if align else ""
    lines = [f"/* {comment} */", f"static const {ctype} {name}{dims}{attr} = {{"]

    def emit(a: np.ndarray, depth: int) -> None:
        pad = "    " * depth
        if a.ndim == 1:
            vals = _fmt_values(a, fmt)
            for k in range(0, len(vals), _VALUES_PER_LINE):
                lines.append(pad + ", ".join(vals[k:k + _VALUES_PER_LINE]) + ",")
            return
        for sub in a:
            lines.append(pad + "{")
            emit(sub, depth + 1)
            lines.append(pad + "},")
    emit(arr, 1)
    lines.append("};")
    return "\n".join(lines) + "\n"


def _c_int(v: int) -> str:
    return str(int(v))


def _index_ctype(max_value: int) -> str:
    return "unsigned short" if max_value < 65536 else "int"


def _relu_stmt(var: str) -> str:
    return f"{var} = {var} > 0.0f ? {var} : 0.0f;"


def _pad_outputs(arr: np.ndarray) -> np.ndarray:
    """Zero-pad the last axis to a multiple of 4 (one vector of 4 floats)."""
    n = arr.shape[-1]
    pad = (-n) % 4
    if pad == 0:
        return arr
    widths = [(0, 0)] * (arr.ndim - 1) + [(0, pad)]
    return np.pad(arr, widths)


def _vector_body(i: int, rows: int, n_out: int, read: str, relu: bool) -> list[str]:
    """acc[o] = bias[o] + sum_k kernel_row_k[o] * input_k, 4 outputs per vector.

    `read` is the C expression of input k with `{k}` for the row. When a row has at most
    4 vectors, even and odd rows go to two accumulator sets so the additions of
    consecutive rows do not wait on each other (4-cycle add latency).
    """
    q = (n_out + 3) // 4
    split = q <= SPLIT_MAX_VECTORS and rows >= 2
    lines = [
        f"    const vec4 *w = (const vec4 *)layer{i}_kernel; /* row k: vectors w[k * {q}] .. */",
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
            f"            acc[q] += w[k * {q} + q] * vs;",
            f"            acc2[q] += w[(k + 1) * {q} + q] * vt;",
            "        }",
            "    }",
        ]
        if rows % 2:
            lines += [
                "    {",
                f"        const float s = {read.format(k=str(rows - 1))};",
                "        const vec4 vs = {s, s, s, s};",
                f"        for (int q = 0; q < {q}; ++q) {{",
                f"            acc[q] += w[{(rows - 1) * q} + q] * vs;",
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
            f"            acc[q] += w[k * {q} + q] * vs;",
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


def _sparse_dot(i: int, x: str, pad: str) -> list[str]:
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


def _choose_mode(kernel: np.ndarray, options: CodegenOptions) -> tuple[str, float]:
    density = float(np.count_nonzero(kernel)) / float(kernel.size)
    if options.sparse == "dense":
        return "dense", density
    if options.sparse == "sparse":
        return "sparse", density
    if kernel.ndim == 4:  # Conv2D: sparse code measured slower at every density
        return "dense", density
    return ("sparse" if density <= options.crossover else "dense"), density


# ---------------------------------------------------------------------- layer emitters
class _Emitter:
    """Collects weights, layer functions and the call sequence of `predict`."""

    def __init__(self, spec: ModelSpec, options: CodegenOptions) -> None:
        self.spec = spec
        self.options = options
        self.weights: list[str] = []
        self.layers: list[str] = []
        self.calls: list[str] = []
        self.plan: list[LayerPlan] = []
        self.need_softmax = False
        self.need_relu = False
        self.cur = "in"  # the buffer holding the current tensor
        self.other = "a"

    # buffers ------------------------------------------------------------------
    def _advance(self) -> tuple[str, str]:
        """(source, destination) for a layer that reads one buffer and writes another."""
        src = self.cur
        dst = "a" if src in ("in", "b") else "b"
        self.cur = dst
        return src, dst

    def _ensure_writable(self) -> None:
        if self.cur == "in":
            n = int(np.prod(self.spec.shapes()[0]))
            self.calls.append(f"    memcpy(a, in, {n} * sizeof(float));")
            self.cur = "a"

    def _apply_activation(self, act: str, buf: str, n: int, comment: str) -> None:
        if act == "relu":
            self.need_relu = True
            self.calls.append(f"    relu({buf}, {n}); /* {comment} */")
        elif act == "softmax":
            self.need_softmax = True
            self.calls.append(f"    softmax({buf}, {n}); /* {comment} */")

    # preprocessing ------------------------------------------------------------
    def preprocessing(self) -> None:
        p = self.spec.preprocessing
        n = p.n_inputs
        if p.mean is None and p.scale is None and p.index is None:
            self.calls.append("    /* no preprocessing: the first layer reads the frame as is */")
            return
        if p.mean is not None:
            self.weights.append(_c_array("float", "pre_mean", p.mean, c_float,
                                         f"preprocessing: mean [{n}]"))
        if p.scale is not None:
            self.weights.append(_c_array("float", "pre_scale", p.scale, c_float,
                                         f"preprocessing: scale [{n}]"))
        value = "in[k]"
        if p.mean is not None:
            value = f"({value} - pre_mean[k])"
        if p.scale is not None:
            value = f"{value} * pre_scale[k]"
        body = []
        if p.index is not None:
            cells = p.grid * p.grid
            self.weights.append(_c_array(
                "int", "pre_index", p.index, _c_int,
                f"preprocessing: CNN rearrangement, cell i of the {p.grid}x{p.grid} grid holds "
                f"neuron pre_index[i] (-1 = empty cell, 0)"))
            doc = (f"/* (frame - mean) * scale, then rearranged into the {p.grid}x{p.grid}x1 "
                   f"grid */")
            body += [
                f"    for (int i = 0; i < {cells}; ++i) {{",
                "        const int k = pre_index[i];",
                f"        x[i] = k < 0 ? 0.0f : {value};",
                "    }",
            ]
        else:
            doc = "/* (frame - mean) * scale */"
            body += [
                f"    for (int k = 0; k < {n}; ++k) {{",
                f"        x[k] = {value};",
                "    }",
            ]
        self.layers.append("\n".join(
            [doc, "static void preprocess(const float *restrict in, float *restrict x)", "{",
             *body, "}", ""]))
        src, dst = self._advance()
        self.calls.append(f"    preprocess({src}, {dst});")

    # layers -------------------------------------------------------------------
    def dense(self, i: int, layer: Dense, in_shape, out_shape) -> None:
        n_in, n_out = layer.kernel.shape
        mode, density = _choose_mode(layer.kernel, self.options)
        nnz = int(np.count_nonzero(layer.kernel))
        act = layer.activation
        title = (f"layer {i}: Dense {n_in} -> {n_out}, {act}; {mode}: {nnz} of "
                 f"{layer.kernel.size} weights nonzero ({100.0 * density:.1f}%)")
        fn = f"layer{i}_dense"
        relu = act == "relu"
        if mode == "dense":
            n_pad = n_out + (-n_out) % 4
            padded = "" if n_pad == n_out else f", zero-padded to {n_pad}"
            self.weights.append(_c_array("float", f"layer{i}_bias", _pad_outputs(layer.bias),
                                         c_float, f"layer {i} Dense bias [out={n_out}{padded}]",
                                         align=True))
            self.weights.append(_c_array("float", f"layer{i}_kernel", _pad_outputs(layer.kernel),
                                         c_float, f"layer {i} Dense kernel [in={n_in}]"
                                         f"[out={n_out}{padded}]", align=True))
            vector = _vector_body(i, n_in, n_out, "x[{k}]", relu)
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
                         f"        {_relu_stmt('y[o]')}", "    }"]
            body = ["#if USE_VECTORS", *vector, "#else", *body, "#endif"]
        else:
            self.weights.append(_c_array("float", f"layer{i}_bias", layer.bias, c_float,
                                         f"layer {i} Dense bias [out={n_out}]"))
            fn += "_sparse"
            self._sparse_lists(i, layer.kernel.reshape(n_in, n_out), "input")
            body = [
                f"    for (int o = 0; o < {n_out}; ++o) {{",
                *_sparse_dot(i, "x", "        "),
                f"        {_relu_stmt('acc') if relu else ''}".rstrip(),
                "        y[o] = acc;",
                "    }",
            ]
            body = [b for b in body if b.strip()]
        self.layers.append("\n".join(
            [f"/* {title} */", f"static void {fn}(const float *restrict x, float *restrict y)",
             "{", *body, "}", ""]))
        src, dst = self._advance()
        self.calls.append(f"    {fn}({src}, {dst});")
        if act == "softmax":
            self._apply_activation("softmax", dst, n_out, f"layer {i} activation")
        self.plan.append(LayerPlan(i, "Dense", in_shape, out_shape, mode, density))

    def _sparse_lists(self, i: int, w2d: np.ndarray, what: str) -> None:
        """Per-output lists of (offset, value) of the nonzero rows of w2d [rows, out]."""
        rows, n_out = w2d.shape
        starts = [0]
        idx: list[int] = []
        val: list[float] = []
        for o in range(n_out):
            nz = np.flatnonzero(w2d[:, o])
            idx.extend(int(k) for k in nz)
            val.extend(float(v) for v in w2d[nz, o])
            starts.append(len(idx))
        if not idx:  # an all-zero layer: C has no zero-length arrays
            idx, val = [0], [0.0]
        self.weights.append(_c_array("int", f"layer{i}_start", np.asarray(starts), _c_int,
                                     f"layer {i}: nonzero weights of output o are "
                                     f"start[o] .. start[o + 1] - 1"))
        self.weights.append(_c_array(_index_ctype(rows), f"layer{i}_index", np.asarray(idx),
                                     _c_int, f"layer {i}: {what} offset of each nonzero weight"))
        self.weights.append(_c_array("float", f"layer{i}_value",
                                     np.asarray(val, np.float32), c_float,
                                     f"layer {i}: value of each nonzero weight"))

    def conv2d(self, i: int, layer: Conv2D, in_shape, out_shape) -> None:
        h, w, cin = in_shape
        ho, wo, cout = out_shape
        kh, kw = layer.kernel.shape[:2]
        sh, sw = layer.strides
        mode, density = _choose_mode(layer.kernel, self.options)
        nnz = int(np.count_nonzero(layer.kernel))
        act = layer.activation
        title = (f"layer {i}: Conv2D {h}x{w}x{cin} -> {ho}x{wo}x{cout}, kernel {kh}x{kw}, "
                 f"strides {sh}x{sw}, valid, {act}; {mode}: {nnz} of {layer.kernel.size} "
                 f"weights nonzero ({100.0 * density:.1f}%)")
        fn = f"layer{i}_conv2d"
        relu = act == "relu"
        pixel = ""
        head = [
            f"    for (int r = 0; r < {ho}; ++r) {{",
            f"        for (int c = 0; c < {wo}; ++c) {{",
            f"            float *restrict yo = y + (r * {wo} + c) * {cout};",
        ]
        # offset of weight (i, j, ci) inside the input window: (i * W + j) * C_in + ci
        offsets = ((np.arange(kh)[:, None, None] * w + np.arange(kw)[None, :, None]) * cin
                   + np.arange(cin)[None, None, :]).reshape(-1)
        if mode == "dense":
            c_pad = cout + (-cout) % 4
            padded = "" if c_pad == cout else f", zero-padded to {c_pad}"
            self.weights.append(_c_array("float", f"layer{i}_bias", _pad_outputs(layer.bias),
                                         c_float, f"layer {i} Conv2D bias [c_out={cout}{padded}]",
                                         align=True))
            self.weights.append(_c_array(
                "float", f"layer{i}_kernel", _pad_outputs(layer.kernel), c_float,
                f"layer {i} Conv2D kernel [kh={kh}][kw={kw}][c_in={cin}][c_out={cout}{padded}]",
                align=True))
            pixel = "\n".join([
                "#if USE_VECTORS",
                _c_array("int", f"layer{i}_offset", offsets, _c_int,
                         f"layer {i}: offset in the input window of kernel row (i, j, ci)")
                .rstrip("\n"),
                "",
                f"/* layer {i}, one output pixel: x is the top-left corner of its window */",
                f"static void layer{i}_pixel(const float *restrict x, float *restrict y)",
                "{",
                *_vector_body(i, kh * kw * cin, cout, f"x[layer{i}_offset[{{k}}]]", relu),
                "}",
                "#endif",
                "",
            ])
            vector = [
                f"    for (int r = 0; r < {ho}; ++r) {{",
                f"        for (int c = 0; c < {wo}; ++c) {{",
                f"            layer{i}_pixel(x + ((r * {sh}) * {w} + c * {sw}) * {cin}, "
                f"y + (r * {wo} + c) * {cout});",
                "        }",
                "    }",
            ]
            body = head + [
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
                         f"                {_relu_stmt('yo[o]')}", "            }"]
            body += ["        }", "    }"]
            body = ["#if USE_VECTORS", *vector, "#else", *body, "#endif"]
        else:
            self.weights.append(_c_array("float", f"layer{i}_bias", layer.bias, c_float,
                                         f"layer {i} Conv2D bias [c_out={cout}]"))
            fn += "_sparse"
            w2d = layer.kernel.reshape(kh * kw * cin, cout)
            self._sparse_conv_lists(i, w2d, offsets)
            body = head + [
                f"            const float *xp = x + ((r * {sh}) * {w} + c * {sw}) * {cin};",
                f"            for (int o = 0; o < {cout}; ++o) {{",
                *_sparse_dot(i, "xp", "                "),
            ]
            if relu:
                body.append(f"                {_relu_stmt('acc')}")
            body += ["                yo[o] = acc;", "            }", "        }", "    }"]
        self.layers.append(pixel + "\n".join(
            [f"/* {title} */", f"static void {fn}(const float *restrict x, float *restrict y)",
             "{", *body, "}", ""]))
        src, dst = self._advance()
        self.calls.append(f"    {fn}({src}, {dst});")
        if act == "softmax":
            self._apply_activation("softmax", dst, ho * wo * cout, f"layer {i} activation")
        self.plan.append(LayerPlan(i, "Conv2D", in_shape, out_shape, mode, density))

    def _sparse_conv_lists(self, i: int, w2d: np.ndarray, offsets: np.ndarray) -> None:
        rows, n_out = w2d.shape
        starts = [0]
        idx: list[int] = []
        val: list[float] = []
        for o in range(n_out):
            nz = np.flatnonzero(w2d[:, o])
            idx.extend(int(offsets[k]) for k in nz)
            val.extend(float(v) for v in w2d[nz, o])
            starts.append(len(idx))
        if not idx:
            idx, val = [0], [0.0]
        self.weights.append(_c_array("int", f"layer{i}_start", np.asarray(starts), _c_int,
                                     f"layer {i}: nonzero weights of filter o are "
                                     f"start[o] .. start[o + 1] - 1"))
        self.weights.append(_c_array(_index_ctype(int(offsets.max()) + 1), f"layer{i}_index",
                                     np.asarray(idx), _c_int,
                                     f"layer {i}: offset (i * W + j) * C_in + ci in the input "
                                     f"window of each nonzero weight"))
        self.weights.append(_c_array("float", f"layer{i}_value", np.asarray(val, np.float32),
                                     c_float, f"layer {i}: value of each nonzero weight"))

    def maxpool(self, i: int, layer: MaxPool2D, in_shape, out_shape) -> None:
        h, w, ch = in_shape
        ho, wo, _ = out_shape
        ph, pw = layer.pool_size
        sh, sw = layer.strides
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
        self.layers.append("\n".join(
            [f"/* {title} */",
             f"static void layer{i}_maxpool(const float *restrict x, float *restrict y)",
             "{", *body, "}", ""]))
        src, dst = self._advance()
        self.calls.append(f"    layer{i}_maxpool({src}, {dst});")
        self.plan.append(LayerPlan(i, "MaxPool2D", in_shape, out_shape, "-", None))

    def passthrough(self, i: int, layer, in_shape, out_shape) -> None:
        kind = type(layer).__name__
        what = {"Flatten": "row-major [H][W][C] is already flat",
                "Dropout": "identity at inference"}[kind]
        self.calls.append(f"    /* layer {i}: {kind}: {what} */")
        self.plan.append(LayerPlan(i, kind, in_shape, out_shape, "-", None))

    def activation(self, i: int, layer: Activation, in_shape, out_shape) -> None:
        n = int(np.prod(out_shape))
        if layer.activation == "linear":
            self.calls.append(f"    /* layer {i}: linear activation: identity */")
        else:
            self._ensure_writable()
            self._apply_activation(layer.activation, self.cur, n, f"layer {i}")
        self.plan.append(LayerPlan(i, "Activation", in_shape, out_shape, "-", None))

    # helpers used by several layers --------------------------------------------
    def helpers(self) -> str:
        out = []
        if self.need_relu:
            out.append("\n".join([
                "/* ReLU in place */",
                "static void relu(float *x, int n)",
                "{",
                "    for (int k = 0; k < n; ++k) {",
                f"        {_relu_stmt('x[k]')}",
                "    }",
                "}",
                "",
            ]))
        if self.need_softmax:
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


def _emit(spec: ModelSpec, options: CodegenOptions) -> _Emitter:
    shapes = spec.shapes()
    for shape in shapes:
        if min(shape) < 1:
            raise ModelError(f"cannot generate C for a tensor of shape {shape}")
    em = _Emitter(spec, options)
    em.preprocessing()
    for i, layer in enumerate(spec.layers):
        args = (i, layer, shapes[i], shapes[i + 1])
        if isinstance(layer, Dense):
            em.dense(*args)
        elif isinstance(layer, Conv2D):
            em.conv2d(*args)
        elif isinstance(layer, MaxPool2D):
            em.maxpool(*args)
        elif isinstance(layer, (Flatten, Dropout)):
            em.passthrough(*args)
        elif isinstance(layer, Activation):
            em.activation(*args)
        else:  # pragma: no cover - ModelSpec already refuses unknown layers
            raise ModelError(f"layer {i}: no C for {type(layer).__name__}")
    em.calls.append(f"    memcpy(out, {em.cur}, {spec.n_outputs} * sizeof(float));")
    return em


def _summary_lines(spec: ModelSpec, plan: list[LayerPlan]) -> str:
    s = spec.summary()
    lines = [
        f" * Inputs: {spec.n_inputs} (raw frame); outputs: {spec.n_outputs}, labels: "
        + c_comment(", ".join(spec.label_names)),
        f" * Parameters: {s['params']} ({s['nonzero_params']} nonzero); FLOPs per frame: "
        f"{s['flops']}",
        " *",
    ]
    for p in plan:
        dens = "" if p.density is None else f", {100.0 * p.density:.1f}% nonzero"
        lines.append(f" *   layer {p.index:<3d}{p.kind:<11s}{str(p.in_shape):>14s} -> "
                     f"{str(p.out_shape):<14s}{p.mode}{dens}")
    return "\n".join(lines)


def generate_sources(
    spec: ModelSpec,
    model_hash: str | None = None,
    options: CodegenOptions | None = None,
) -> tuple[dict[str, str], list[LayerPlan]]:
    """The four files (name -> text) and the per-layer plan; nothing is written."""
    options = options or CodegenOptions()
    model_hash = model_hash or spec.content_hash()
    if not all(ch in "0123456789abcdef" for ch in model_hash):
        raise ConfigError(f"model hash {model_hash!r} is not a hex digest")
    em = _emit(spec, options)
    shapes = spec.shapes()
    buf = max(int(np.prod(s)) for s in shapes)
    prefix = options.prefix
    upper = prefix.upper()
    mapping = {
        "prefix": prefix,
        "PREFIX": upper,
        "PREFIX_LOWER": prefix,
        "GUARD": f"{upper}_DECODER_H",
        "BANNER_TITLE": c_comment(f"model {spec.name!r}"),
        "MODEL_NAME": c_string(spec.name),
        "GENERATOR": GENERATOR_ID,
        "MODEL_HASH": model_hash,
        "N_INPUTS": str(spec.n_inputs),
        "N_OUTPUTS": str(spec.n_outputs),
        "STACK_BYTES": str(2 * buf * 4),
        "BUF_SIZE": str(buf),
        "STATUS_ENUM": "\n".join(f"    {upper}_{name} = {k}," for k, (name, _) in
                                 enumerate(STATUS)),
        "STATUS_TABLE": "\n".join(f"    [{upper}_{name}] = {c_string(text)},"
                                  for name, text in STATUS),
        "SUMMARY": _summary_lines(spec, em.plan),
        "WEIGHTS": "\n".join(em.weights),
        "LAYERS": em.helpers() + "\n".join(em.layers),
        "CALLS": "\n".join(em.calls),
    }
    files = {
        name: _template(name + ".tmpl").substitute(mapping)
        for name in ("decoder.h", "decoder.c", "main.c", "Makefile")
    }
    return files, em.plan


def write_sources(
    spec: ModelSpec,
    out_dir: str | os.PathLike,
    model_hash: str | None = None,
    options: CodegenOptions | None = None,
) -> tuple[Path, list[LayerPlan]]:
    """Write decoder.h, decoder.c, main.c and Makefile into out_dir."""
    files, plan = generate_sources(spec, model_hash, options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    return out, plan


def generate_pyext(spec: ModelSpec, module: str, options: CodegenOptions | None = None) -> str:
    """pyext.c: a CPython module `module` whose predict() calls <prefix>_predict."""
    options = options or CodegenOptions()
    c_identifier(module, "module name")
    prefix = options.prefix
    return _template("pyext.c.tmpl").substitute({
        "prefix": prefix, "PREFIX": prefix.upper(), "MODULE": module,
        "GENERATOR": GENERATOR_ID, "N_INPUTS": str(spec.n_inputs),
        "N_OUTPUTS": str(spec.n_outputs),
    })
