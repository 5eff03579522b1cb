"""One example per command, shown at the end of its `--help` (and in docs/cli.md).

Keyed by command path as typed after `neurogrs` ("train", "bench inference"; "" is
`neurogrs` itself). One example is one command line; lines before it (separated by "\n")
may prepare what it needs. tests/test_cli_help.py fails when a registered command has no example,
when an example names a command that does not exist, or when it does not parse with the
real parser (every option spelled in full, as the command defines it). A new command
adds its line here.
"""
from __future__ import annotations

__all__ = ["EXAMPLES"]

EXAMPLES: dict[str, str] = {
    "": "neurogrs simulate session.npz --neurons 273 --seed 0",
    "simulate": "neurogrs simulate session.npz --neurons 273 --seed 0",
    "inspect": "neurogrs inspect session.npz",
    "convert": "neurogrs convert session.npz session.nwb",
    "train": "neurogrs train session.npz --model nn1 --out art/nn1",
    "evaluate": "neurogrs evaluate art/nn1 day2.npz day3.npz",
    "info": "neurogrs info art/nn1",
    "prune": ("neurogrs simulate session.npz --neurons 273 --seed 0\n"
              "neurogrs prune session.npz --models nn1,nn2 --method grs --tq --out pruned "
              "--select 'acc>=0.97*orig' --minimize flops+params"),
    "codegen": "neurogrs codegen pruned/selected --out decoder_c",
    "serve": ("neurogrs serve pruned/selected --engine c --frames @tcp://127.0.0.1:5555 "
              "--predictions @tcp://127.0.0.1:5556"),
    "listen": "neurogrs listen --session session.npz --artifact pruned/selected",
    "dashboard": "neurogrs dashboard --session session.npz --artifact pruned/selected --port 8765",
    "keys": "neurogrs keys lab-keys",
    "replay": "neurogrs replay session.npz --speed 10",
    "demo": "neurogrs demo --session session.npz --out demo-out",
    "sweep": "neurogrs sweep sweep.toml --workers 2",
    "bench": "neurogrs bench inference art/nn1",
    "bench inference": "neurogrs bench inference art/nn1 --no-peers",
    "bench service": "neurogrs bench service art/nn1 --engine c --soak-frames 0",
    "bench pruning": "neurogrs bench pruning --rounds 3 --epochs 50",
    "bench crosssession": "neurogrs bench crosssession --models nn1,nn2,cnn1,cnn2 --out bench-xs",
}
