"""`nnspec runs [DIR...]`: the runs under a folder in one table (spec, backend, settings that differ, epochs,
best validation and test metrics, time); `--plot OUT.png` overlays their curves."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("dirs", nargs="*", metavar="DIR", default=None,
                   help="run directories or folders holding them (default: runs)")
    p.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    p.add_argument("--sort", default="created", metavar="KEY",
                   help="column to sort by: created (default), name, best, test, test_accuracy, seconds, lr, ...")
    p.add_argument("--reverse", action="store_true", help="sort in descending order")
    p.add_argument("--plot", metavar="OUT.png", default=None, help="also draw the listed runs' curves in one PNG")
    p.add_argument("--metric", default=None, help="the curve --plot draws (default: the monitored metric)")


def run(args, out, err) -> int:
    from nnspec.training import runs

    rows = runs.list_runs(args.dirs or ["runs"], sort=args.sort, reverse=args.reverse)
    if args.format == "json":
        print(runs.format_json(rows), file=out)
    elif args.format == "markdown":
        print(runs.format_markdown(rows), file=out)
    else:
        print(runs.format_table(rows), file=out)
    if args.plot:
        runs.plot_runs(rows, args.plot, args.metric)
        print(f"wrote {args.plot}", file=err)
    return 0
