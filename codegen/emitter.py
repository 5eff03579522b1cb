"""Layer emission: walks a ModelSpec and collects, per layer, the weights (`static const`
arrays), the layer functions of every kernel set and the call sequence of `predict`.

The kernels themselves come from `kernels_portable.py` (vector4, plain, sparse) and
`kernels_simd.py` (AVX2, AVX-512); this module decides which to emit for each layer
(`options.choose_mode`, the Conv2D + MaxPool2D fusion), lays out the weights, and
ping-pongs the tensor between the two stack buffers. `sources.py` fills the templates
with what it collected.
"""
from __future__ import annotations

import numpy as np

from neurogrs.codegen.blocking import can_fuse_pool
from neurogrs.codegen.kernels_portable import (
    activation_functions,
    conv_body,
    conv_pixel_function,
    conv_sparse_body,
    dense_body,
    dense_sparse_body,
    maxpool_function,
    sparse_lists,
)
from neurogrs.codegen.kernels_simd import SIMD_ISAS, simd_conv, simd_dense
from neurogrs.codegen.kernels_temporal import StateMember, filter_code, traces_code
from neurogrs.codegen.literals import c_array, c_int, pad_outputs
from neurogrs.codegen.names import c_float
from neurogrs.codegen.options import (
    ISA_SUFFIX,
    PAD,
    SPLIT_SUFFIX,
    CodegenSettings,
    LayerPlan,
    choose_mode,
)
from neurogrs.errors import ModelError
from neurogrs.layers_temporal import ForwardFilter, LeakyTraces
from neurogrs.spec import (
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ModelSpec,
)

__all__ = ["Emitter", "emit"]


class Emitter:
    """Collects weights, layer functions and the call sequence of `predict`."""

    def __init__(self, spec: ModelSpec, options: CodegenSettings) -> None:
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
        self.state: list[StateMember] = []  # one member of <prefix>_state per stateful layer

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
            self.weights.append(c_array("float", "pre_mean", p.mean, c_float,
                                        f"preprocessing: mean [{n}]"))
        if p.scale is not None:
            self.weights.append(c_array("float", "pre_scale", p.scale, c_float,
                                        f"preprocessing: scale [{n}]"))
        value = "in[k]"
        if p.mean is not None:
            value = f"({value} - pre_mean[k])"
        if p.scale is not None:
            value = f"{value} * pre_scale[k]"
        body = []
        if p.index is not None:
            cells = p.grid * p.grid
            self.weights.append(c_array(
                "int", "pre_index", p.index, c_int,
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
        mode, density = choose_mode(layer.kernel, self.options)
        nnz = int(np.count_nonzero(layer.kernel))
        act = layer.activation
        title = (f"layer {i}: Dense {n_in} -> {n_out}, {act}; {mode}: {nnz} of "
                 f"{layer.kernel.size} weights nonzero ({100.0 * density:.1f}%)")
        fn = f"layer{i}_dense"
        relu = act == "relu"
        if mode == "split":
            # x86 SIMD sets: dense kernels; vector4/plain: the zero-skipping code below
            n_pad = n_out + (-n_out) % PAD
            self.weights.append(c_array("float", f"layer{i}_bias", pad_outputs(layer.bias),
                                        c_float, f"layer {i} Dense bias [out={n_out}, "
                                        f"zero-padded to {n_pad}]", align=True))
            self.weights.append("\n".join([
                "#if USE_AVX2 || USE_AVX512",
                c_array("float", f"layer{i}_kernel", pad_outputs(layer.kernel), c_float,
                        f"layer {i} Dense kernel [in={n_in}][out={n_out}, zero-padded to "
                        f"{n_pad}] (x86 SIMD kernels only)", align=True).rstrip("\n"),
                "#endif", ""]))
            for isa in SIMD_ISAS:
                self.layers_simd[isa.name].append(simd_dense(isa, i, n_in, n_out, n_pad, relu))
        if mode == "dense":
            n_pad = n_out + (-n_out) % PAD
            padded = "" if n_pad == n_out else f", zero-padded to {n_pad}"
            self.weights.append(c_array("float", f"layer{i}_bias", pad_outputs(layer.bias),
                                        c_float, f"layer {i} Dense bias [out={n_out}{padded}]",
                                        align=True))
            self.weights.append(c_array("float", f"layer{i}_kernel", pad_outputs(layer.kernel),
                                        c_float, f"layer {i} Dense kernel [in={n_in}]"
                                        f"[out={n_out}{padded}]", align=True))
            for isa in SIMD_ISAS:
                self.layers_simd[isa.name].append(simd_dense(isa, i, n_in, n_out, n_pad, relu))
            body = dense_body(i, n_in, n_out, relu, n_pad)
        else:
            if mode == "sparse":
                self.weights.append(c_array("float", f"layer{i}_bias", layer.bias, c_float,
                                            f"layer {i} Dense bias [out={n_out}]"))
            fn += "_sparse"
            self.weights += sparse_lists(i, layer.kernel.reshape(n_in, n_out))
            body = dense_sparse_body(i, n_out, relu)
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

    def conv2d(self, i: int, layer: Conv2D, in_shape, out_shape, pool=None) -> bool:
        """Emit layer i; with pool = (j, MaxPool2D, its in_shape, its out_shape) for the
        layer right after, fuse that pooling in when possible. True when fused."""
        h, w, cin = in_shape
        ho, wo, cout = out_shape
        kh, kw = layer.kernel.shape[:2]
        sh, sw = layer.strides
        mode, density = choose_mode(layer.kernel, self.options)
        nnz = int(np.count_nonzero(layer.kernel))
        act = layer.activation
        title = (f"layer {i}: Conv2D {h}x{w}x{cin} -> {ho}x{wo}x{cout}, kernel {kh}x{kw}, "
                 f"strides {sh}x{sw}, valid, {act}; {mode}: {nnz} of {layer.kernel.size} "
                 f"weights nonzero ({100.0 * density:.1f}%)")
        fn = f"layer{i}_conv2d"
        relu = act == "relu"
        pixel = ""
        # offset of weight (i, j, ci) inside the input window: (i * W + j) * C_in + ci
        offsets = ((np.arange(kh)[:, None, None] * w + np.arange(kw)[None, :, None]) * cin
                   + np.arange(cin)[None, None, :]).reshape(-1)
        if mode == "dense":
            c_pad = cout + (-cout) % PAD
            if pool is not None and not can_fuse_pool(act, pool[1].pool_size):
                pool = None
            pool_arg = None if pool is None else (
                pool[0], pool[1].pool_size, pool[1].strides, pool[3][:2])
            for isa in SIMD_ISAS:
                self.layers_simd[isa.name].append(simd_conv(
                    isa, i, in_shape, out_shape, kh, kw, (sh, sw), c_pad, relu, pool_arg))
            padded = "" if c_pad == cout else f", zero-padded to {c_pad}"
            self.weights.append(c_array("float", f"layer{i}_bias", pad_outputs(layer.bias),
                                        c_float, f"layer {i} Conv2D bias [c_out={cout}{padded}]",
                                        align=True))
            self.weights.append(c_array(
                "float", f"layer{i}_kernel", pad_outputs(layer.kernel), c_float,
                f"layer {i} Conv2D kernel [kh={kh}][kw={kw}][c_in={cin}][c_out={cout}{padded}]",
                align=True))
            pixel = conv_pixel_function(i, offsets, cout, relu, c_pad)
            body = conv_body(i, in_shape, out_shape, kh, kw, (sh, sw), relu)
        else:
            pool = None
            self.weights.append(c_array("float", f"layer{i}_bias", layer.bias, c_float,
                                        f"layer {i} Conv2D bias [c_out={cout}]"))
            fn += "_sparse"
            w2d = layer.kernel.reshape(kh * kw * cin, cout)
            self.weights += sparse_lists(
                i, w2d, offsets, "filter", "offset (i * W + j) * C_in + ci in the input window")
            body = conv_sparse_body(i, in_shape, out_shape, (sh, sw), relu)
        self.layers.append(pixel + "\n".join(
            [f"/* {title} */", f"static void {fn}(const float *restrict x, float *restrict y)",
             "{", *body, "}", ""]))
        self.plan.append(LayerPlan(i, "Conv2D", in_shape, out_shape, mode, density))
        if pool is not None:
            j, pool_layer, pool_in, pool_out = pool
            n_conv = int(np.prod(out_shape))
            self.fused_temp = max(self.fused_temp, n_conv)
            self.fused_shapes.add(j)  # the conv output (= pool input, shapes[j]) stays local
            self.layers.append(maxpool_function(j, pool_in, pool_out, pool_layer.pool_size,
                                                pool_layer.strides))
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

    def maxpool(self, i: int, layer: MaxPool2D, in_shape, out_shape) -> None:
        self.layers.append(maxpool_function(i, in_shape, out_shape, layer.pool_size,
                                            layer.strides))
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

    def stateful(self, i: int, layer, in_shape, out_shape) -> None:
        """LeakyTraces / ForwardFilter: reads one buffer, writes the other, and updates its
        member of the state struct (s->layer<i>), which every forward pass receives."""
        if isinstance(layer, LeakyTraces):
            weights, code, member = traces_code(i, layer, int(np.prod(in_shape)))
            fn = f"layer{i}_traces"
        else:
            weights, code, member = filter_code(i, layer)
            fn = f"layer{i}_filter"
        self.weights += weights
        self.layers.append(code)
        self.state.append(member)
        src, dst = self._advance()
        self.calls.append(f"    {fn}({src}, {dst}, s->{member.name});")
        self.plan.append(LayerPlan(i, type(layer).__name__, in_shape, out_shape, "-", None))

    # helpers used by several layers --------------------------------------------
    def helpers(self) -> str:
        """The in-place relu() / softmax() the call sequence uses."""
        return activation_functions(self.need_relu, self.need_softmax)


def emit(spec: ModelSpec, options: CodegenSettings) -> Emitter:
    """Run the emitter over every layer of spec; ModelError for an empty tensor."""
    shapes = spec.shapes()
    for shape in shapes:
        if min(shape) < 1:
            raise ModelError(f"cannot generate C for a tensor of shape {shape}")
    em = Emitter(spec, options)
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
        elif isinstance(layer, (LeakyTraces, ForwardFilter)):
            em.stateful(*args)
        else:  # pragma: no cover - ModelSpec already refuses unknown layers
            raise ModelError(f"layer {i}: no C for {type(layer).__name__}")
    em.calls.append(f"    memcpy(out, {em.cur}, {spec.n_outputs} * sizeof(float));")
    return em
