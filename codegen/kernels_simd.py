"""The x86-64 SIMD kernel sets of the generated C: AVX2+FMA (8-wide) and AVX-512F
(16-wide) Dense and Conv2D functions (a Conv2D optionally fused with its MaxPool2D).

Emitted next to the portable kernels, each set inside a function compiled with
__attribute__((target(...))), so a library built with default flags (no -march) carries
8-wide AVX2+FMA and 16-wide AVX-512 code that runs only when the CPU has it (see
`<prefix>_predict`). Same loop structure for both; only the vector width and the
intrinsics differ. `max_acc` accumulators live at once; the other registers hold weights
and broadcast inputs (16 ymm / 32 zmm registers).
"""
from __future__ import annotations

from dataclasses import dataclass

from neurogrs.codegen.blocking import near_equal_blocks

__all__ = ["Isa", "ISA_AVX2", "ISA_AVX512", "SIMD_ISAS", "simd_dense", "simd_conv"]


@dataclass(frozen=True)
class Isa:
    """One SIMD instruction set: vector type, intrinsic prefix, register budget."""

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


ISA_AVX2 = Isa("avx2", 8, "__m256", "_mm256", "AVX2_TARGET", 12, 6)
ISA_AVX512 = Isa("avx512", 16, "__m512", "_mm512", "AVX512_TARGET", 24, 12)
SIMD_ISAS = (ISA_AVX512, ISA_AVX2)


def simd_dense(isa: Isa, i: int, n_in: int, n_out: int, n_pad: int, relu: bool) -> str:
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
    for v0, nb in near_equal_blocks(q, 4):
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


def simd_conv(isa: Isa, i: int, in_shape, out_shape, kh: int, kw: int, strides,
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
        for v0, nb in near_equal_blocks(q, max(1, isa.max_acc // n_px)):
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
