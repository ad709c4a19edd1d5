"""`nnspec evaluate RUN_DIR`: re-score a trained run's saved weights on the test set."""

from __future__ import annotations

HELP = "re-score a trained run on the test set"


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by nnspec train")
    from nnspec.cli.common import add_backend_argument

    add_backend_argument(p, "score on this framework (default: the one the run trained on)")
    p.add_argument("--weights", choices=["best", "last"], default=None,
                   help="which saved weights (default: the ones metrics.json was scored with)")
    p.add_argument("--format", choices=["table", "json"], default="table")


def run(args, out, err) -> int:
    import json

    from nnspec.training.progress import format_metric, results_table
    from nnspec.training.run import evaluate

    scores = evaluate(args.run_dir, backend=args.backend, weights=args.weights)
    if args.format == "json":
        print(json.dumps(scores, indent=2), file=out)
        return 0
    rows = [(k, format_metric(k, v)) for k, v in scores.items() if k.startswith("test_") and k != "test_examples"]
    rows += [("test examples", str(scores["test_examples"])), ("weights", scores["weights"]),
             ("backend", scores["backend"])]
    if "saved" in scores:
        rows += [(f"saved {k}", format_metric(k, v)) for k, v in scores["saved"].items()]
    print(results_table(rows, f"evaluate {args.run_dir}"), file=out)
    return 0
