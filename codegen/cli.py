"""CLI: `neurogrs codegen ARTIFACT [--out DIR] [--prefix P] [--sparse ...] [--march-native]`."""
from __future__ import annotations

import argparse

from neurogrs.codegen.options import SPARSE_MODES

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "codegen",
        help="generate a C99 library (decoder.h/.c, main.c, Makefile) and build libdecoder.so",
        description=(
            "Generate readable C99 for an artifact: decoder.h (the <prefix>_predict API), "
            "decoder.c (static const weights, one function per layer, no malloc), main.c (a "
            "harness reading raw float32 frames), a Makefile; then compile libdecoder.so and "
            "the harness with the system compiler (-O3 -fPIC -std=c99)."
        ),
    )
    p.add_argument("artifact", help="artifact directory (model.json + weights.npz)")
    p.add_argument("--out", default="decoder_c", help="output directory (default ./decoder_c)")
    p.add_argument("--prefix", default="decoder",
                   help="C identifier prefix of the API (default: decoder -> decoder_predict)")
    p.add_argument("--sparse", choices=SPARSE_MODES, default="auto",
                   help="zero-skipping code for sparse layers: auto picks per layer by "
                        "density (default), or force either")
    p.add_argument("--march-native", action="store_true",
                   help="compile for this CPU (-march=native; the library may not run elsewhere)")
    p.add_argument("--no-compile", action="store_true", help="write the sources only")
    p.set_defaults(func=_cmd_codegen)


def _cmd_codegen(args: argparse.Namespace) -> int:
    from neurogrs.codegen import generate_library

    report = generate_library(args.artifact, args.out, prefix=args.prefix, sparse=args.sparse,
                              march_native=args.march_native, compile=not args.no_compile)
    print(report)
    return 0
