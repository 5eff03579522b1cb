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
GENERATOR_VERSION = "3"
GENERATOR_ID = f"neurogrs-codegen/{GENERATOR_VERSION}"

SPARSE_MODES = ("auto", "dense", "sparse")
# In "auto" mode a Dense layer with at most this fraction of nonzero weights is "split":
# the 4-wide and plain kernel sets run zero-skipping code for it (it beat them at <= 7%
# nonzero on nn1, N=273), the AVX2 / AVX-512 sets keep their dense kernels (the sparse
# code lost to them at every density down to 3%). Conv2D layers always get dense code
# (sparse conv code never won). Measured with `python -m neurogrs.bench.crossover`;
# runs and tables in docs/codegen.md.
SPARSE_CROSSOVER = 0.07

STATUS = (
    ("OK", "ok"),
    ("ERR_NULL", "null pointer argument"),
    ("ERR_COUNT", "negative frame count"),
    ("ERR_CLOCK", "clock_gettime failed"),
)

_VALUES_PER_LINE = 8
# Weighted layers' outputs are zero-padded to a multiple of this many floats (one AVX
# vector, two SSE vectors; an AVX-512 kernel masks the upper half of its last vector when
# needed). Not 16: nn1's first kernel padded 20 -> 32 instead of 24 outgrows L1 and costs
# ~35% (measured, pruned nn1).
PAD = 8
# Placeholders in the call sequence for the kernel set: ISA_SUFFIX becomes "_avx512",
# "_avx2" or "" (portable); SPLIT_SUFFIX the same, but "_sparse" in the portable set.
ISA_SUFFIX = "@ISA@"
SPLIT_SUFFIX = "@SPLIT@"
# Rows go to two accumulator sets when a layer has at most this many output vectors
# (more would not fit the 16 SSE registers together with the weights).
SPLIT_MAX_VECTORS = 4
# A Conv2D followed by a MaxPool2D whose window has at most this many pixels is fused in
# the AVX2 kernel set (the window's conv pixels are one register block).
FUSE_POOL_MAX = 9


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
    mode: str  # "dense" | "sparse" | "split" (x86 SIMD sets dense, others sparse) | "-"
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
    """Zero-pad the last axis to a multiple of PAD floats."""
    n = arr.shape[-1]
    pad = (-n) % PAD
    if pad == 0:
        return arr
    widths = [(0, 0)] * (arr.ndim - 1) + [(0, pad)]
    return np.pad(arr, widths)


def _vector_body(i: int, rows: int, n_out: int, read: str, relu: bool,
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


# ------------------------------------------------------- x86-64 SIMD kernel sets
# Emitted next to the portable kernels, each set inside a function compiled with
# __attribute__((target(...))), so a library built with default flags (no -march) carries
# 8-wide AVX2+FMA and 16-wide AVX-512 code that runs only when the CPU has it (see
# `<prefix>_predict`). Same loop structure for both; only the vector width and the
# intrinsics differ. `max_acc` accumulators live at once; the other registers hold weights
# and broadcast inputs (16 ymm / 32 zmm registers).
@dataclass(frozen=True)
class _Isa:
    name: str        # function suffix and kernels() string
    width: int       # floats per vector
    vtype: str
    pfx: str         # intrinsic prefix
    target: str      # the attribute macro
    max_acc: int
    max_px: int      # conv: most output pixels per register block

    def load(self, ptr: str, avail: int) -> str:
        """Load a vector of weights whose array row holds `avail` more floats from ptr
        (rows are padded to PAD = 8 floats: a 16-wide load may need its upper half masked
        off). AVX2 loads are aligned (32-byte rows); AVX-512 rows need not be 64-byte
        aligned, so those loads are unaligned (no penalty when they happen to be)."""
        if self.width == 8:
            return f"_mm256_load_ps({ptr})"
        if avail >= self.width:
            return f"_mm512_loadu_ps({ptr})"
        return f"_mm512_maskz_loadu_ps((__mmask16){(1 << avail) - 1:#06x}, {ptr})"

    def store(self, ptr: str, value: str, lanes: int) -> str:
        """Store the first `lanes` floats of a vector (all: one unaligned store)."""
        if lanes >= self.width:
            return f"{self.pfx}_storeu_ps({ptr}, {value});"
        if self.width == 16:
            return f"_mm512_mask_storeu_ps({ptr}, (__mmask16){(1 << lanes) - 1:#06x}, {value});"
        mask = ", ".join(["-1"] * lanes + ["0"] * (self.width - lanes))
        return f"_mm256_maskstore_ps({ptr}, _mm256_setr_epi32({mask}), {value});"


ISA_AVX2 = _Isa("avx2", 8, "__m256", "_mm256", "AVX2_TARGET", 12, 6)
ISA_AVX512 = _Isa("avx512", 16, "__m512", "_mm512", "AVX512_TARGET", 24, 12)
SIMD_ISAS = (ISA_AVX512, ISA_AVX2)


def _blocks(q: int, max_block: int) -> list[tuple[int, int]]:
    """Output vectors 0..q-1 in near-equal blocks of at most max_block: [(first, count)]."""
    n_blocks = -(-q // max(1, max_block))
    size = -(-q // n_blocks)
    return [(v, min(size, q - v)) for v in range(0, q, size)]


def _simd_dense(isa: _Isa, i: int, n_in: int, n_out: int, n_pad: int, relu: bool) -> str:
    """y = x K + b, one vector of outputs per FMA; S interleaved row sets hide the FMA
    latency; blocks of output vectors keep the accumulators in registers."""
    vw, t, m = isa.width, isa.vtype, isa.pfx
    q = -(-n_out // vw)
    lines = [f"/* layer {i}, {isa.name}: Dense {n_in} -> {n_out} */",
             f"static {isa.target} void layer{i}_dense_{isa.name}(const float *restrict x, "
             "float *restrict y)", "{",
             f"    const float *w = &layer{i}_kernel[0][0]; /* row k: w + k * {n_pad} */",
             "    int k;"]
    if relu:
        lines.append(f"    const {t} zero = {m}_setzero_ps();")
    for v0, nb in _blocks(q, 4):
        s_sets = max(1, min(4, (isa.max_acc * 2 // 3) // nb, n_in))
        acc = [[f"a{s}_{v}" for v in range(nb)] for s in range(s_sets)]
        lines.append(f"    {{ /* outputs {vw * v0} .. {min(n_out, vw * (v0 + nb)) - 1} */")
        for s in range(s_sets):
            for v in range(nb):
                init = (isa.load(f"layer{i}_bias + {vw * (v0 + v)}", n_pad - vw * (v0 + v))
                        if s == 0
                        else f"{m}_setzero_ps()")
                lines.append(f"        {t} {acc[s][v]} = {init};")
        lines.append(f"        for (k = 0; k + {s_sets - 1} < {n_in}; k += {s_sets}) {{")
        for s in range(s_sets):
            row = "k" if s == 0 else f"k + {s}"
            lines.append(f"            const {t} s{s} = {m}_set1_ps(x[{row}]);")
            for v in range(nb):
                wv = isa.load(f"w + ({row}) * {n_pad} + {vw * (v0 + v)}", n_pad - vw * (v0 + v))
                lines.append(f"            {acc[s][v]} = {m}_fmadd_ps({wv}, s{s}, {acc[s][v]});")
        lines.append("        }")
        if n_in % s_sets:
            lines.append(f"        for (; k < {n_in}; ++k) {{")
            lines.append(f"            const {t} s0 = {m}_set1_ps(x[k]);")
            for v in range(nb):
                wv = isa.load(f"w + k * {n_pad} + {vw * (v0 + v)}", n_pad - vw * (v0 + v))
                lines.append(f"            {acc[0][v]} = {m}_fmadd_ps({wv}, s0, {acc[0][v]});")
            lines.append("        }")
        for v in range(nb):
            total = acc[0][v]
            for s in range(1, s_sets):
                total = f"{m}_add_ps({total}, {acc[s][v]})"
            if relu:
                total = f"{m}_max_ps({total}, zero)"
            lanes = min(vw, n_out - vw * (v0 + v))
            lines.append("        " + isa.store(f"y + {vw * (v0 + v)}", total, lanes))
        lines.append("    }")
    lines += ["}", ""]
    return "\n".join(lines)


def _simd_conv(isa: _Isa, i: int, in_shape, out_shape, kh: int, kw: int, strides,
               c_pad: int, relu: bool, pool: tuple | None = None) -> str:
    """Valid Conv2D: P output pixels at a time share every weight load; each pixel keeps
    its c_out vectors in registers over the kh * kw * c_in window.

    With `pool` = (j, (ph, pw), (psh, psw), (hp, wp)) the MaxPool2D layer j that follows is
    fused in: the P pixels are one pooling window, reduced with max before the (monotone)
    ReLU, and only the pooled tensor is stored."""
    vw, t, m = isa.width, isa.vtype, isa.pfx
    h, w, cin = in_shape
    ho, wo, cout = out_shape
    sh, sw = strides
    q = -(-cout // vw)
    if pool is None:
        name = f"layer{i}_conv2d_{isa.name}"
        what = f"Conv2D {h}x{w}x{cin} -> {ho}x{wo}x{cout}"
    else:
        j, (ph, pw), (psh, psw), (hp, wp) = pool
        name = f"layer{i}_conv2d_maxpool_{isa.name}"
        what = (f"Conv2D {h}x{w}x{cin} -> {ho}x{wo}x{cout} fused with layer {j} MaxPool2D "
                f"-> {hp}x{wp}x{cout}")
    lines = [f"/* layer {i}, {isa.name}: {what} */",
             f"static {isa.target} void {name}(const float *restrict x, float *restrict y)",
             "{"]
    if relu:
        lines.append(f"    const {t} zero = {m}_setzero_ps();")

    def block(bases: list[str], deltas: list[int], stores: list[str] | None,
              pad: str) -> list[str]:
        """Conv pixels whose windows start at xb + deltas[k] (xb = bases[0]: constant
        offsets, so one pointer register serves them all), or, with one base per pixel,
        at xb<k>; stores: per-pixel output offsets, or None for one max-pooled output at
        y + o."""
        n_px = len(deltas)
        if len(bases) == 1:
            out = [f"{pad}const float *xb = {bases[0]};"]
            ptr = ["xr"] * n_px
        else:
            out = [f"{pad}const float *xb{k} = {b};" for k, b in enumerate(bases)]
            ptr = [f"xr{k}" for k in range(n_px)]
        for v0, nb in _blocks(q, max(1, isa.max_acc // n_px)):
            acc = [[f"a{k}_{v}" for v in range(nb)] for k in range(n_px)]
            out.append(f"{pad}{{ /* channels {vw * v0} .. {min(cout, vw * (v0 + nb)) - 1} */")
            p2 = pad + "    "
            for k in range(n_px):
                for v in range(nb):
                    bv = isa.load(f"layer{i}_bias + {vw * (v0 + v)}", c_pad - vw * (v0 + v))
                    out.append(f"{p2}{t} {acc[k][v]} = {bv};")
            out += [f"{p2}for (int i = 0; i < {kh}; ++i) {{",
                    f"{p2}    for (int j = 0; j < {kw}; ++j) {{",
                    f"{p2}        const float *wr = &layer{i}_kernel[i][j][0][{vw * v0}];",
                    *[f"{p2}        const float *{r} = xb{r[2:]} + (i * {w} + j) * {cin};"
                      for r in dict.fromkeys(ptr)],
                    f"{p2}        for (int ci = 0; ci < {cin}; ++ci) {{"]
            p3 = p2 + "            "
            for v in range(nb):
                wv = isa.load(f"wr + ci * {c_pad} + {vw * v}", c_pad - vw * (v0 + v))
                out.append(f"{p3}const {t} w{v} = {wv};")
            for k in range(n_px):
                d = f" + {deltas[k]}" if deltas[k] else ""
                out.append(f"{p3}const {t} s{k} = {m}_set1_ps({ptr[k]}[ci{d}]);")
                for v in range(nb):
                    out.append(f"{p3}{acc[k][v]} = {m}_fmadd_ps(w{v}, s{k}, {acc[k][v]});")
            out += [f"{p2}        }}", f"{p2}    }}", f"{p2}}}"]
            for v in range(nb):
                lanes = min(vw, cout - vw * (v0 + v))
                if stores is None:  # max over the pooling window, then ReLU, one store
                    val = acc[0][v]
                    for k in range(1, n_px):
                        val = f"{m}_max_ps({val}, {acc[k][v]})"
                    if relu:
                        val = f"{m}_max_ps({val}, zero)"
                    out.append(p2 + isa.store(f"y + o + {vw * (v0 + v)}", val, lanes))
                else:
                    for k, px in enumerate(stores):
                        val = f"{m}_max_ps({acc[k][v]}, zero)" if relu else acc[k][v]
                        out.append(p2 + isa.store(f"y + {px} + {vw * (v0 + v)}", val, lanes))
            out.append(f"{pad}}}")
        return out

    if pool is not None:
        deltas = [(a * sh * w + b * sw) * cin for a in range(ph) for b in range(pw)]
        lines += [f"    for (int r = 0; r < {hp}; ++r) {{",
                  f"        for (int c = 0; c < {wp}; ++c) {{ /* one pooled pixel */",
                  f"            const int o = (r * {wp} + c) * {cout};"]
        lines += block([f"x + ((r * {psh * sh}) * {w} + c * {psw * sw}) * {cin}"], deltas,
                       None, "            ")
        lines += ["        }", "    }", "}", ""]
        return "\n".join(lines)

    cap = max(1, min(isa.max_px, isa.max_acc // min(q, 4)))
    if wo <= cap:
        # a whole output row per block: one pointer, constant offsets
        lines.append(f"    for (int r = 0; r < {ho}; ++r) {{ /* one output row at a time */")
        lines += block([f"x + (r * {sh * w}) * {cin}"], [k * sw * cin for k in range(wo)],
                       [f"(r * {wo} + {k}) * {cout}" for k in range(wo)], "        ")
        lines += ["    }", "}", ""]
        return "\n".join(lines)

    # P pixels at a time in row-major order (a block may wrap to the next row), rest after
    npix = ho * wo
    n_px = -(-npix // -(-npix // cap))

    def flat(n: int, first: str) -> list[str]:
        pxs = [first if k == 0 else f"({first} + {k})" for k in range(n)]
        return block([f"x + (({px} / {wo}) * {sh * w} + ({px} % {wo}) * {sw}) * {cin}"
                      for px in pxs], [0] * n, [f"{px} * {cout}" for px in pxs], "        ")

    lines += [f"    int p;", f"    for (p = 0; p + {n_px - 1} < {npix}; p += {n_px}) {{"
              f" /* {n_px} output pixels at a time */",
              *flat(n_px, "p"), "    }"]
    rem = npix % n_px
    if rem:
        lines += ["    {", *flat(rem, str(npix - rem)), "    }"]
    lines += ["}", ""]
    return "\n".join(lines)


def _choose_mode(kernel: np.ndarray, options: CodegenOptions) -> tuple[str, float]:
    density = float(np.count_nonzero(kernel)) / float(kernel.size)
    if options.sparse == "dense":
        return "dense", density
    if options.sparse == "sparse":
        return "sparse", density
    if kernel.ndim == 4:  # Conv2D: sparse code measured slower at every density
        return "dense", density
    # Dense: the x86 SIMD kernels beat the sparse code at every density measured (3%), the
    # 4-wide kernels lose to it below the crossover: "split" emits both, picked per set
    return ("split" if density <= options.crossover else "dense"), density


# ---------------------------------------------------------------------- layer emitters
class _Emitter:
    """Collects weights, layer functions and the call sequence of `predict`."""

    def __init__(self, spec: ModelSpec, options: CodegenOptions) -> None:
        self.spec = spec
        self.options = options
        self.weights: list[str] = []
        self.layers: list[str] = []
        self.layers_simd: dict[str, list[str]] = {isa.name: [] for isa in SIMD_ISAS}
        self.fused_temp = 0  # floats of the largest conv output kept local by a fusion
        self.fused_shapes: set[int] = set()  # indices into spec.shapes() never in a/b
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
        if mode == "split":
            # x86 SIMD sets: dense kernels; vector4/plain: the zero-skipping code below
            n_pad = n_out + (-n_out) % PAD
            self.weights.append(_c_array("float", f"layer{i}_bias", _pad_outputs(layer.bias),
                                         c_float, f"layer {i} Dense bias [out={n_out}, "
                                         f"zero-padded to {n_pad}]", align=True))
            self.weights.append("\n".join([
                "#if USE_AVX2 || USE_AVX512",
                _c_array("float", f"layer{i}_kernel", _pad_outputs(layer.kernel), c_float,
                         f"layer {i} Dense kernel [in={n_in}][out={n_out}, zero-padded to "
                         f"{n_pad}] (x86 SIMD kernels only)", align=True).rstrip("\n"),
                "#endif", ""]))
            for isa in SIMD_ISAS:
                self.layers_simd[isa.name].append(_simd_dense(isa, i, n_in, n_out, n_pad, relu))
        if mode == "dense":
            n_pad = n_out + (-n_out) % PAD
            padded = "" if n_pad == n_out else f", zero-padded to {n_pad}"
            self.weights.append(_c_array("float", f"layer{i}_bias", _pad_outputs(layer.bias),
                                         c_float, f"layer {i} Dense bias [out={n_out}{padded}]",
                                         align=True))
            self.weights.append(_c_array("float", f"layer{i}_kernel", _pad_outputs(layer.kernel),
                                         c_float, f"layer {i} Dense kernel [in={n_in}]"
                                         f"[out={n_out}{padded}]", align=True))
            vector = _vector_body(i, n_in, n_out, "x[{k}]", relu, n_pad // 4)
            for isa in SIMD_ISAS:
                self.layers_simd[isa.name].append(_simd_dense(isa, i, n_in, n_out, n_pad, relu))
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
            if mode == "sparse":
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
        call = {"dense": f"{fn}{ISA_SUFFIX}", "sparse": fn,
                "split": f"layer{i}_dense{SPLIT_SUFFIX}"}[mode]
        self.calls.append(f"    {call}({src}, {dst});")
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

    def conv2d(self, i: int, layer: Conv2D, in_shape, out_shape, pool=None) -> bool:
        """Emit layer i; with pool = (j, MaxPool2D, its in_shape, its out_shape) for the
        layer right after, fuse that pooling in when possible. True when fused."""
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
            c_pad = cout + (-cout) % PAD
            if pool is not None and (act not in ("relu", "linear")
                                     or int(np.prod(pool[1].pool_size)) > FUSE_POOL_MAX):
                pool = None
            pool_arg = None if pool is None else (
                pool[0], pool[1].pool_size, pool[1].strides, pool[3][:2])
            for isa in SIMD_ISAS:
                self.layers_simd[isa.name].append(_simd_conv(
                    isa, i, in_shape, out_shape, kh, kw, (sh, sw), c_pad, relu, pool_arg))
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
                *_vector_body(i, kh * kw * cin, cout, f"x[layer{i}_offset[{{k}}]]", relu,
                              c_pad // 4),
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
            pool = None
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
        self.plan.append(LayerPlan(i, "Conv2D", in_shape, out_shape, mode, density))
        if pool is not None:
            j, pool_layer, pool_in, pool_out = pool
            n_conv = int(np.prod(out_shape))
            self.fused_temp = max(self.fused_temp, n_conv)
            self.fused_shapes.add(j)  # the conv output (= pool input, shapes[j]) stays local
            self.layers.append(self._maxpool_function(j, pool_layer, pool_in, pool_out))
            self.layers.append("\n".join([
                f"/* layers {i} and {j}: Conv2D then MaxPool2D (the AVX2 kernel fuses them) */",
                f"static void {fn}_maxpool(const float *restrict x, float *restrict y)", "{",
                f"    float t[{n_conv}] VEC_ALIGN;", "",
                f"    {fn}(x, t);", f"    layer{j}_maxpool(t, y);", "}", ""]))
            src, dst = self._advance()
            self.calls.append(f"    {fn}_maxpool{ISA_SUFFIX}({src}, {dst}); "
                              f"/* layers {i} and {j} */")
            self.plan.append(LayerPlan(j, "MaxPool2D", pool_in, pool_out, "-", None))
            return True
        src, dst = self._advance()
        sfx = ISA_SUFFIX if mode == "dense" else ""
        self.calls.append(f"    {fn}{sfx}({src}, {dst});")
        if act == "softmax":
            self._apply_activation("softmax", dst, ho * wo * cout, f"layer {i} activation")
        return False

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
        self.layers.append(self._maxpool_function(i, layer, in_shape, out_shape))
        src, dst = self._advance()
        self.calls.append(f"    layer{i}_maxpool({src}, {dst});")
        self.plan.append(LayerPlan(i, "MaxPool2D", in_shape, out_shape, "-", None))

    @staticmethod
    def _maxpool_function(i: int, layer: MaxPool2D, in_shape, out_shape) -> str:
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
        return "\n".join(
            [f"/* {title} */",
             f"static void layer{i}_maxpool(const float *restrict x, float *restrict y)",
             "{", *body, "}", ""])

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
    layers = spec.layers
    skip = set()
    for i, layer in enumerate(layers):
        if i in skip:
            continue
        args = (i, layer, shapes[i], shapes[i + 1])
        if isinstance(layer, Dense):
            em.dense(*args)
        elif isinstance(layer, Conv2D):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            pool = ((i + 1, nxt, shapes[i + 1], shapes[i + 2])
                    if isinstance(nxt, MaxPool2D) else None)
            if em.conv2d(*args, pool=pool):
                skip.add(i + 1)
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
    buf = max(int(np.prod(s)) for k, s in enumerate(shapes) if k not in em.fused_shapes)
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
        "STACK_BYTES": str((2 * buf + em.fused_temp) * 4),
        "BUF_SIZE": str(buf),
        "STATUS_ENUM": "\n".join(f"    {upper}_{name} = {k}," for k, (name, _) in
                                 enumerate(STATUS)),
        "STATUS_TABLE": "\n".join(f"    [{upper}_{name}] = {c_string(text)},"
                                  for name, text in STATUS),
        "SUMMARY": _summary_lines(spec, em.plan),
        "WEIGHTS": "\n".join(em.weights),
        "LAYERS": em.helpers() + "\n".join(em.layers),
        "LAYERS_AVX2": "\n".join(em.layers_simd["avx2"]),
        "LAYERS_AVX512": "\n".join(em.layers_simd["avx512"]),
        "CALLS": "\n".join(em.calls).replace(ISA_SUFFIX, "").replace(SPLIT_SUFFIX, "_sparse"),
        "CALLS_AVX2": "\n".join(em.calls).replace(ISA_SUFFIX, "_avx2")
        .replace(SPLIT_SUFFIX, "_avx2"),
        "CALLS_AVX512": "\n".join(em.calls).replace(ISA_SUFFIX, "_avx512")
        .replace(SPLIT_SUFFIX, "_avx512"),
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
