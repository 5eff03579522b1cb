"""The generator's modules: each says what it holds, and every name in `__all__` exists
(generator.py is the public face that re-exports the split modules' public names)."""
from __future__ import annotations

import importlib

import pytest

MODULES = ["generator", "options", "names", "literals", "blocking", "kernels_portable",
           "kernels_simd", "emitter", "sources"]


@pytest.mark.parametrize("name", MODULES)
def test_module_has_docstring_and_all(name):
    mod = importlib.import_module(f"neurogrs.codegen.{name}")
    assert mod.__doc__ and mod.__doc__.strip()
    assert mod.__all__ and all(hasattr(mod, n) for n in mod.__all__)


def test_generator_reexports_the_public_api():
    from neurogrs.codegen import generator, options, sources

    for n in ("GENERATOR_VERSION", "GENERATOR_ID", "SPARSE_MODES", "SPARSE_CROSSOVER",
              "STATUS", "CodegenSettings", "LayerPlan"):
        assert getattr(generator, n) is getattr(options, n)
    for n in ("generate_sources", "write_sources", "generate_pyext"):
        assert getattr(generator, n) is getattr(sources, n)
