"""Template filling: the four files of the generated library (decoder.h, decoder.c,
main.c, Makefile) and the CPython binding (pyext.c), from the templates in `templates/`
and what `emitter.emit` collected for the model.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from neurogrs.codegen.emitter import emit
from neurogrs.codegen.names import c_comment, c_identifier, c_string
from neurogrs.codegen.options import (
    GENERATOR_ID,
    ISA_SUFFIX,
    SPLIT_SUFFIX,
    STATUS,
    CodegenSettings,
    LayerPlan,
)
from neurogrs.errors import ConfigError
from neurogrs.spec import ModelSpec

__all__ = ["generate_sources", "write_sources", "generate_pyext"]


def _template(name: str) -> Template:
    text = resources.files("neurogrs.codegen").joinpath("templates", name).read_text()
    return Template(text)


def _parts(name: str) -> dict[str, str]:
    """The sections of a `*.parts.tmpl` file: text after each '@@ NAME' line up to the
    next, its last newline dropped (the template puts the placeholder on its own line)."""
    parts: dict[str, list[str]] = {}
    key = None
    for line in _template(name).template.splitlines(keepends=True):
        if line.startswith("@@ "):
            key = line[3:].strip()
            parts[key] = []
        elif key is not None:
            parts[key].append(line)
    return {k: "".join(v)[:-1] for k, v in parts.items()}


def _api_parts(spec: ModelSpec, em, mapping: dict[str, str]) -> dict[str, str]:
    """API_DOC, API_DECLS, FORWARD_PARAMS, PUBLIC_PREDICT, PUBLIC_BATCH (and main.c's
    MAIN_STATE, MAIN_PREDICT): the stateless API, or the one with <prefix>_state."""
    prefix = mapping["prefix"]
    if not em.state:
        parts = _parts("stateless.parts.tmpl")
        extra = {"MAIN_STATE": "", "MAIN_PREDICT": f"{prefix}_predict(in, out)"}
    else:
        parts = _parts("stateful.parts.tmpl")
        extra = {"MAIN_STATE": f"\n    {prefix}_state state; /* the input is one stream */"
                               f"\n\n    {prefix}_state_init(&state);",
                 "MAIN_PREDICT": f"{prefix}_predict_state(&state, in, out)"}
    values = {**mapping,
              "STATE_BYTES": str(4 * sum(m.floats for m in em.state)),
              "STATE_MEMBERS": "\n".join(m.declaration() for m in em.state)}
    return {**{k: Template(v).substitute(values) for k, v in parts.items()}, **extra}


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
    options: CodegenSettings | None = None,
) -> tuple[dict[str, str], list[LayerPlan]]:
    """The four files (name -> text) and the per-layer plan; nothing is written."""
    options = options or CodegenSettings()
    model_hash = model_hash or spec.content_hash()
    if not all(ch in "0123456789abcdef" for ch in model_hash):
        raise ConfigError(f"model hash {model_hash!r} is not a hex digest")
    em = emit(spec, options)
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
    mapping.update(_api_parts(spec, em, mapping))
    files = {
        name: _template(name + ".tmpl").substitute(mapping)
        for name in ("decoder.h", "decoder.c", "main.c", "Makefile")
    }
    return files, em.plan


def write_sources(
    spec: ModelSpec,
    out_dir: str | os.PathLike,
    model_hash: str | None = None,
    options: CodegenSettings | None = None,
) -> tuple[Path, list[LayerPlan]]:
    """Write decoder.h, decoder.c, main.c and Makefile into out_dir."""
    files, plan = generate_sources(spec, model_hash, options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    return out, plan


def generate_pyext(spec: ModelSpec, module: str, options: CodegenSettings | None = None) -> str:
    """pyext.c: a CPython module `module` whose predict() calls <prefix>_predict (for a
    stateful model: predict_state(frame, state) calling <prefix>_predict_state)."""
    options = options or CodegenSettings()
    c_identifier(module, "module name")
    prefix = options.prefix
    name = "pyext_state.c.tmpl" if spec.stateful else "pyext.c.tmpl"
    return _template(name).substitute({
        "prefix": prefix, "PREFIX": prefix.upper(), "MODULE": module,
        "GENERATOR": GENERATOR_ID, "N_INPUTS": str(spec.n_inputs),
        "N_OUTPUTS": str(spec.n_outputs),
    })
