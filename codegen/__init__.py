"""neurogrs.codegen: readable C99 from a model spec, and the compiler driver.

    files, plan = generate_sources(spec, options=CodegenSettings(prefix="decoder"))
    generate_library("artifact_dir", "out_dir")   # writes, compiles, returns a report
"""
from __future__ import annotations

import os
from pathlib import Path

from neurogrs.codegen.compiler import (
    CompileSettings,
    compile_harness,
    compile_library,
    find_compiler,
)
from neurogrs.codegen.generator import (
    GENERATOR_ID,
    SPARSE_CROSSOVER,
    CodegenSettings,
    LayerPlan,
    generate_sources,
    write_sources,
)

__all__ = [
    "GENERATOR_ID",
    "SPARSE_CROSSOVER",
    "CodegenSettings",
    "CompileSettings",
    "LayerPlan",
    "generate_sources",
    "write_sources",
    "compile_library",
    "compile_harness",
    "find_compiler",
    "generate_library",
]


def generate_library(
    artifact: str | os.PathLike,
    out_dir: str | os.PathLike,
    prefix: str = "decoder",
    sparse: str = "auto",
    march_native: bool = False,
    compile: bool = True,
) -> str:
    """Load and verify an artifact, write the C sources, build; returns a short report."""
    from neurogrs.artifact import load_artifact

    art = load_artifact(artifact)
    options = CodegenSettings(prefix=prefix, sparse=sparse)
    out, plan = write_sources(art.spec, out_dir, art.hash, options)
    lines = [f"wrote {out}/decoder.h, decoder.c, main.c, Makefile ({GENERATOR_ID}, "
             f"model {art.hash[:12]})"]
    for p in plan:
        if p.density is not None:
            lines.append(f"  layer {p.index} {p.kind} {p.in_shape} -> {p.out_shape}: {p.mode} "
                         f"code ({100 * p.density:.1f}% nonzero weights)")
    if compile:
        co = CompileSettings(march_native=march_native)
        lib = compile_library(out, co)
        exe = compile_harness(out, co)
        lines.append(f"built {lib} and {exe} with {' '.join(co.flags())}")
        lines.append(f"try: {Path(exe)} frames.f32   (raw float32, {art.spec.n_inputs} per frame)")
    return "\n".join(lines)
