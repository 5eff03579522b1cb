"""Generate readable C99 from a ModelSpec: decoder.h, decoder.c, main.c, Makefile.

The public face of the C generator; the work is done, by concern, in:

- `options.py`: GENERATOR_VERSION / GENERATOR_ID, CodegenSettings, LayerPlan, the status
  table (STATUS), sparse modes and the dense/sparse choice per layer;
- `names.py` / `literals.py`: identifiers, escaped text, float and integer literals,
  `static const` arrays;
- `kernels_portable.py`: the vector4 / plain / zero-skipping sparse layer bodies;
- `kernels_simd.py`: the AVX2 and AVX-512 kernel sets;
- `blocking.py`: register-blocking rules shared with the numba engine;
- `emitter.py`: walks the layers, collects weights, functions and the call sequence;
- `sources.py`: fills the templates in `templates/` (generate_sources, write_sources,
  generate_pyext).

The generated decoder runs one function per layer, ping-ponging between two stack buffers
sized at generation time (no malloc, no mutable globals: thread-safe and reentrant);
stores Dense kernels [in][out] and Conv2D kernels [kh][kw][c_in][c_out] and loops "inputs
outside, outputs inside" (axpy), which GCC vectorises at -O3 without -ffast-math; for
sparse (TQ) layers it optionally keeps only the nonzero weights as per-output index lists
(chosen per layer by density, see `SPARSE_CROSSOVER`).

Everything that comes from the model but is not a number (name, labels) reaches the C
files only through `names.c_comment` / `names.c_string`; the prefix must pass
`names.c_identifier`.
"""
from __future__ import annotations

from neurogrs.codegen.options import (
    GENERATOR_ID,
    GENERATOR_VERSION,
    SPARSE_CROSSOVER,
    SPARSE_MODES,
    STATUS,
    CodegenSettings,
    LayerPlan,
)
from neurogrs.codegen.sources import generate_pyext, generate_sources, write_sources

__all__ = [
    "GENERATOR_VERSION",
    "GENERATOR_ID",
    "SPARSE_MODES",
    "SPARSE_CROSSOVER",
    "STATUS",
    "CodegenSettings",
    "LayerPlan",
    "generate_sources",
    "write_sources",
    "generate_pyext",
]
