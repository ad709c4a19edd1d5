"""`nnspec train SPEC`: train on torch or keras; progress per epoch, a results table, a run directory."""

from __future__ import annotations

from nnspec.cli.common import add_override_argument

HELP = "train a spec on torch or keras"


def add_arguments(p) -> None:
    p.add_argument("spec", metavar="SPEC", nargs="?", help="the spec to train (not needed with --resume)")
    add_override_argument(p)
    from nnspec.cli.common import add_backend_argument

    add_backend_argument(p, "framework (default: torch)")
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    p.add_argument("--batch-size", type=int, default=None, help="override train.batch_size")
    p.add_argument("--lr", type=float, default=None, help="override the learning rate")
    p.add_argument("--seed", type=int, default=None, help="override train.seed")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default=None, help="override train.device")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="where run directories go: DIR/<spec name>/<timestamp>/ (default: runs)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="train on the first N examples only")
    p.add_argument("--ensemble", type=int, default=None, metavar="N", help="train N members with seeds seed..seed+N-1")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run from its last completed epoch")
    p.add_argument("--quiet", action="store_true", help="print only the run directory and the results")


def _positive(args, err) -> bool:
    for name in ("epochs", "batch_size", "limit", "ensemble"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1 (got {value})", file=err)
            return False
    if args.lr is not None and args.lr <= 0:
        print(f"error: --lr must be > 0 (got {args.lr})", file=err)
        return False
    return True


def run(args, out, err) -> int:
    from nnspec.training.run import train

    if not _positive(args, err):
        return 2
    if not args.spec and not args.resume:
        print("error: give a SPEC to train, or --resume RUN_DIR", file=err)
        return 2
    spec = None
    if not args.resume:
        from nnspec.pipeline import load

        spec = load(args.spec, overrides=args.overrides)
    elif args.overrides:
        print("error: --set changes a new run; a resumed run continues with the spec and overrides it started with",
              file=err)
        return 2
    elif args.backend is not None:
        print("note: --resume continues on the run's own backend; --backend is ignored", file=err)
    try:
        result = train(spec, backend=args.backend or "torch", epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, seed=args.seed, device=args.device, out=args.out, limit=args.limit,
                       ensemble=args.ensemble, resume=args.resume, progress=_Quiet(out) if args.quiet else out,
                       keras_backend=args.keras_backend)
    except KeyboardInterrupt as exc:
        where = getattr(exc, "run_dir", None)
        print("interrupted" + (f"; every completed epoch is saved: nnspec train --resume {where}" if where else ""),
              file=err)
        return 130
    if args.quiet:
        from nnspec.training.run import results_text

        print(results_text(result), file=out)
    return 0


class _Quiet:
    """A stream that keeps only the run-directory line."""

    def __init__(self, out):
        self.out = out

    def write(self, text: str) -> None:
        if text.startswith(("run directory:", "resuming")):
            self.out.write(text)

    def flush(self) -> None:
        self.out.flush()
