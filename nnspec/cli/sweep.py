"""`nnspec sweep SPEC --param PATH=DIST ...`: a hyper-parameter search with Optuna; every trial is a run."""

from __future__ import annotations

from nnspec.cli.common import add_override_argument


def add_arguments(p) -> None:
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--param", dest="params", action="append", default=[], metavar="PATH=DIST", required=True,
                   help="a value to search: train.lr=loguniform(1e-4,1e-2), 'encoder[4].rate=[0.2,0.3,0.5]', "
                        "train.batch_size=int(32,256) (repeatable)")
    add_override_argument(p)
    p.add_argument("--trials", type=int, default=10, metavar="N", help="trials in the study, all workers together "
                   "(default 10)")
    p.add_argument("--metric", default="val_loss", help="what to optimise, a history column (default val_loss)")
    p.add_argument("--direction", choices=["maximize", "minimize"], default=None,
                   help="default: maximize for accuracies, minimize otherwise")
    p.add_argument("--storage", metavar="URL", default=None,
                   help="Optuna storage shared by workers: sqlite:///sweep.db, postgresql://... (default: in memory)")
    p.add_argument("--study", metavar="NAME", default=None, help="study name (default: <spec name>-sweep)")
    p.add_argument("--out", metavar="DIR", default="runs", help="where the trials' run directories go (default runs)")
    from nnspec.cli.common import add_backend_argument

    add_backend_argument(p, "framework (default: torch)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: train.epochs)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="train each trial on the first N examples")
    p.add_argument("--device", default=None, help="override train.device")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampler (the trials keep train.seed)")
    p.add_argument("--no-prune", dest="prune", action="store_false", help="run every trial to its last epoch")


def run(args, out, err) -> int:
    from nnspec.training.sweep import format_results, sweep

    if args.trials < 1:
        print(f"error: --trials must be >= 1 (got {args.trials})", file=err)
        return 2
    options = {k: v for k, v in {"epochs": args.epochs, "limit": args.limit, "device": args.device,
                                  "keras_backend": args.keras_backend}.items() if v is not None}
    result = sweep(args.spec, args.params, trials=args.trials, metric=args.metric, direction=args.direction,
                   storage=args.storage, study=args.study, out=args.out, backend=args.backend or "torch",
                   overrides=tuple(args.overrides), prune=args.prune, seed=args.seed, progress=out, **options)
    print("", file=out)
    print(format_results(result), file=out)
    print(f"results and Optuna's plots: {result.folder}", file=out)
    return 0
