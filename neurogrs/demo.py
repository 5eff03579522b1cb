"""`make demo`: the main job on the embedded default, end to end, with a summary.

simulate a 273-neuron session -> train nn1 (paper defaults) -> evaluate honestly ->
export the artifact -> generate and compile the C library -> check the C engine against
the numpy reference on the held-out frames.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neurogrs.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="demo-out", help="output directory (default demo-out)")
    ap.add_argument("--neurons", type=int, default=273)
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-codegen", action="store_true", help="skip the C library")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)

    from neurogrs.artifact import load_artifact, save_artifact
    from neurogrs.errors import NeurogrsError
    from neurogrs.evaluate import format_metrics
    from neurogrs.formats import save_session
    from neurogrs.simulate import simulate_session
    from neurogrs.pruning.train import TrainConfig, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    try:
        t = time.perf_counter()
        session = simulate_session(n_neurons=args.neurons, n_frames=args.frames, seed=args.seed)
        sess_path = save_session(session, out / "session.npz")
        times["simulate"] = time.perf_counter() - t
        print(f"[1/4] simulated {session!r} -> {sess_path}")

        t = time.perf_counter()
        result = train(session, TrainConfig(model="nn1", epochs=args.epochs, seed=args.seed),
                       progress=not args.quiet and sys.stderr.isatty())
        art_path = save_artifact(result.spec, out / "nn1", keras_save=result.keras_model.save)
        times["train"] = time.perf_counter() - t
        print(f"[2/4] trained nn1 for {args.epochs} epochs -> {art_path}")

        art = load_artifact(art_path)
        m = result.metrics
        print("[3/4] evaluated (blocked split 8:1:1, forward in time)")
        print("      " + format_metrics("val", m["val"]).replace("\n", "\n      "))
        print("      " + format_metrics("test", m["test"]).replace("\n", "\n      "))

        c_line = "skipped"
        if not args.no_codegen:
            t = time.perf_counter()
            from neurogrs.cli import main as cli_main

            code = cli_main(["codegen", str(art_path), "--out", str(out / "nn1_c")])
            if code != 0:
                return code
            from neurogrs.inference import load_engine

            c_engine = load_engine(art, "c")
            frames = session.traces[result.split.test]
            err = float(np.abs(c_engine.predict_batch(frames) - load_engine(art, "numpy")
                               .predict_batch(frames)).max())
            times["codegen"] = time.perf_counter() - t
            c_line = f"{out / 'nn1_c'} (C engine vs numpy on {len(frames)} test frames: max abs err {err:.1e})"
            print(f"[4/4] generated and compiled the C library -> {c_line}")

        s = art.spec.summary()
        print("\nsummary")
        print(f"  session     {session.n_neurons} neurons x {session.n_frames} frames (simulated, seed {args.seed})")
        print(f"  model       nn1 {s['structure']}")
        print(f"  params      {s['params']:,}")
        print(f"  FLOPs       {s['flops']:,} per frame")
        print(f"  test acc    {m['test']['accuracy']:.3f} (balanced {m['test']['balanced_accuracy']:.3f}, "
              f"baseline (best constant) {m['test']['baseline_accuracy']:.3f})")
        print(f"  artifact    {art_path}  hash {art.hash[:16]}")
        print(f"  C library   {c_line}")
        print("  time        " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    except NeurogrsError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
