"""`neurogrs prune`: parse, then delegate to `neurogrs.pruning.pipeline`.

Importing this module never imports TensorFlow (the handler imports lazily).
"""
from __future__ import annotations

import argparse
import sys

from neurogrs.pruning.methods import method_names
from neurogrs.pruning.settings import STAGE_T_READINGS

__all__ = ["register"]

_EPILOG = """\
settings: the paper's defaults; --config FILE.toml sets any of them (top-level keys named
like PruneSettings fields, e.g. tau_s = 0.98, retrain_epochs = 20), flags override the file.

selection names (D_V and counts only; the test part is only reported):
  acc (the --metric on D_V), accuracy, balanced_accuracy, flops, params, nonzero_params,
  effective_flops, orig (the initial model's acc), orig_accuracy, orig_balanced_accuracy,
  orig_flops, orig_params; numbers, + - * /, and < <= > >= in --select.

outputs in OUT: <model>/initial, <model>/<method>[, <model>/<method>-tq] (artifacts for
serve and codegen), selected/, report.json, plots/*.png. Ctrl-C writes the best accepted
model so far and a report marked partial (exit 130). See docs/pruning.md.

example:
  neurogrs simulate session.npz --neurons 273 --seed 0
  neurogrs prune session.npz --models nn1,nn2 --method grs --tq --out pruned \\
      --select "acc>=0.97*orig" --minimize "flops+params"
"""


def _defaults():
    from neurogrs.pruning.settings import PruneSettings

    return PruneSettings()


def register(sub: argparse._SubParsersAction) -> None:
    from neurogrs.cli_session import add_session_options

    d = _defaults()
    p = sub.add_parser(
        "prune",
        help="prune decoders (GRS, RRS, NWM, JGRS; TQ) and select one design",
        description=(
            "Train each candidate model on SESSION, prune it with GRS (greedy layer, random "
            "unit), RRS (random layer), NWM (natural order, smallest L1) or JGRS (GRS with "
            "jumps scored without retraining), optionally apply "
            "Stage T and Q (--tq), measure accuracy / FLOPs / parameters, and select one "
            "design. Decisions read the validation part only."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("session", help="session file (.npz, TRACES_*.csv, speed-only .npz)")
    p.add_argument("--models", default="nn1", metavar="M1,M2",
                   help="comma-separated zoo models (nn1, nn2, cnn1, cnn2, and their temporal "
                        "variants such as nn2_traces, nn1_traces_filter: docs/temporal.md) "
                        "or .keras files (default nn1)")
    p.add_argument("--method", choices=method_names(), default="grs",
                   help="structured pruning algorithm (default grs; jgrs = GRS with jumps, "
                        "our reconstruction, see docs/pruning.md)")
    p.add_argument("--tq", action="store_true",
                   help="then Stage T (threshold) and Stage Q (round), no retraining "
                        "(default off)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--config", metavar="FILE.toml", default=None,
                   help="prune settings from a TOML file (default none: paper defaults)")
    p.add_argument("--select", metavar="CONSTRAINTS", default=None,
                   help="comma-separated constraints, e.g. 'acc>=0.97*orig, flops<=5000' "
                        "(default none)")
    obj = p.add_mutually_exclusive_group()
    obj.add_argument("--minimize", metavar="EXPR", default=None,
                     help="objective to minimise, e.g. 'flops+params' or '0.5*flops+params' "
                          "(default: maximise acc)")
    obj.add_argument("--maximize", metavar="EXPR", default=None,
                     help="objective to maximise (default acc)")
    p.add_argument("--eval-session", nargs="+", metavar="OTHER", default=None,
                   help="other sessions of the same neurons (later days), read with the same "
                        "session options: every artifact written (initial, pruned, TQ, "
                        "selected) is scored on each and pooled, after selection, into "
                        "report.json (cross_session) and the table. Only reported: never used "
                        "for any decision (default none)")
    p.add_argument("--json", action="store_true", help="print report.json instead of the table (default off)")
    p.add_argument("--quiet", action="store_true", help="no progress output (default off)")

    s = p.add_argument_group("prune settings (flags override --config)")
    s.add_argument("--metric", choices=("balanced_accuracy", "accuracy"), default=None,
                   help=f"decision metric on D_V (default {d.metric})")
    s.add_argument("--split", choices=("blocked", "shuffled"), default=None,
                   help=f"blocked: contiguous, honest; shuffled: the paper's (default {d.split})")
    s.add_argument("--blocks", type=int, default=None, metavar="K",
                   help=f"blocked split over K chunks (default {d.blocks})")
    s.add_argument("--seed", type=int, default=None,
                   help=f"seed of split, training, unit draws (default {d.seed})")
    s.add_argument("--epochs", type=int, default=None,
                   help=f"epochs to train the initial models (default {d.initial_epochs})")
    s.add_argument("--retrain-epochs", type=int, default=None,
                   help=f"fine-tuning epochs per candidate (default {d.retrain_epochs})")
    s.add_argument("--batch-size", type=int, default=None,
                   help=f"batch size (default {d.batch_size})")
    s.add_argument("--lr", type=float, default=None,
                   help=f"Adam learning rate (default {d.learning_rate:g})")
    s.add_argument("--dropout-decay", type=float, default=None,
                   help=f"dropout rate x DECAY**k at iteration k (default {d.dropout_decay})")
    s.add_argument("--tau-s", type=float, default=None,
                   help=f"GRS/RRS/NWM tolerance vs the initial metric (default {d.tau_s})")
    s.add_argument("--tau-t", type=float, default=None,
                   help=f"Stage T tolerance (default {d.tau_t})")
    s.add_argument("--tau-q", type=float, default=None,
                   help=f"Stage Q tolerance (default {d.tau_q})")
    s.add_argument("--min-units", type=int, default=None,
                   help=f"minimum units per prunable layer (default {d.min_units})")
    s.add_argument("--theta", type=float, default=None,
                   help=f"Stage T first threshold (default {d.theta})")
    s.add_argument("--theta-step", type=float, default=None,
                   help=f"Stage T threshold step (default {d.theta_step})")
    s.add_argument("--stage-t", choices=STAGE_T_READINGS, default=None,
                   help="Stage T stop rule: 'layerwise' (the first failing layer ends it; the "
                        "authors' code), 'global' (one all-layer cut per sweep; the paper's "
                        "prose), 'per_layer' (a failing layer keeps its threshold, the others "
                        f"go on) (default {d.stage_t})")
    s.add_argument("--decimals", type=int, default=None,
                   help=f"Stage Q first decimal places (default {d.decimals})")
    j = p.add_argument_group("JGRS (--method jgrs; algorithms.md §8, our reconstruction)")
    j.add_argument("--jgrs-rule", choices=("doubling", "tolerance"), default=None,
                   help="phase 1 jumps: 'doubling' (J x2 after a cheap accepted jump, /2 "
                        "otherwise) or 'tolerance' (remove while the no-retrain metric stays "
                        f">= tau_s*A0) (default {d.jgrs_rule})")
    j.add_argument("--jgrs-score", choices=("every_unit", "random_unit"), default=None,
                   help="units a jump step scores without retraining: every active unit of "
                        "every layer, or one random unit per layer "
                        f"(default {d.jgrs_score})")
    j.add_argument("--jgrs-j0", type=int, default=None,
                   help="first jump size; 0 = max(2, round(FRACTION x units above the "
                        f"minimum)) (default {d.jgrs_j0})")
    j.add_argument("--jgrs-j0-fraction", type=float, default=None,
                   help=f"FRACTION for the first jump size (default {d.jgrs_j0_fraction})")
    j.add_argument("--jgrs-delta", type=float, default=None,
                   help="J grows after an accepted jump whose no-retrain drop was below DELTA "
                        f"(absolute) (default {d.jgrs_delta})")
    j.add_argument("--jgrs-factor", type=int, default=None,
                   help=f"J grows x FACTOR, shrinks // FACTOR (default {d.jgrs_factor})")
    j.add_argument("--jgrs-max-jump", type=int, default=None,
                   help=f"cap on one jump's removals, 0 = none (default {d.jgrs_max_jump})")
    j.add_argument("--jgrs-no-phase2", dest="jgrs_phase2", action="store_const", const=False,
                   default=None, help="stop after phase 1 instead of finishing with exact GRS")
    add_session_options(p)
    p.set_defaults(func=_cmd_prune)
    from neurogrs.pruning.cli_sweep import register as register_sweep

    register_sweep(sub)


_FLAG_FIELDS = {"metric": "metric", "split": "split", "blocks": "blocks", "seed": "seed",
                "epochs": "initial_epochs", "retrain_epochs": "retrain_epochs",
                "batch_size": "batch_size", "lr": "learning_rate",
                "dropout_decay": "dropout_decay", "tau_s": "tau_s", "tau_t": "tau_t",
                "tau_q": "tau_q", "min_units": "min_units", "theta": "theta",
                "theta_step": "theta_step", "stage_t": "stage_t", "decimals": "decimals",
                **{f: f for f in ("jgrs_rule", "jgrs_score", "jgrs_j0", "jgrs_j0_fraction",
                                  "jgrs_delta", "jgrs_factor", "jgrs_max_jump", "jgrs_phase2")}}


def settings_from_args(args: argparse.Namespace):
    from neurogrs.pruning.settings import PruneSettings

    overrides = {field: getattr(args, flag) for flag, field in _FLAG_FIELDS.items()}
    return PruneSettings.from_file(args.config, **overrides)


def _cmd_prune(args: argparse.Namespace) -> int:
    from neurogrs.cli_session import session_from_args
    from neurogrs.pruning.pipeline import check_selection, prune_session
    from neurogrs.pruning.progress import PruneProgress
    from neurogrs.pruning.report import summary_table, to_json

    settings = settings_from_args(args)
    check_selection(args.select, args.minimize, args.maximize)  # fail before training
    session = session_from_args(args)
    others = []
    if args.eval_session:
        from neurogrs.cli_session import scored_sessions_from_args

        others = scored_sessions_from_args(args.eval_session, args)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    run = prune_session(
        session, models, args.method, settings, args.out, with_tq=args.tq,
        constraints=args.select, minimize=args.minimize, maximize=args.maximize,
        progress=None if args.quiet else (lambda desc: PruneProgress(desc)),
        show_training=not args.quiet and sys.stderr.isatty(), eval_sessions=others,
    )
    if args.json:
        print(to_json(run.report))
    else:
        print(summary_table(run.report))
        print(f"output     {run.out}")
    if run.partial:
        chosen = (run.report.get("selection") or {}).get("chosen")
        what = (f"wrote the best accepted model so far ({chosen})" if chosen
                else "interrupted before any model was pruned")
        print(f"neurogrs: interrupted: {what}; report marked partial: {run.out / 'report.json'}",
              file=sys.stderr)
        return 130
    if run.selection_error:
        from neurogrs.errors import ConfigError

        raise ConfigError(run.selection_error)
    return 0
