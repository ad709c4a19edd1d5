"""`nnspec train SPEC`: train on torch or keras; progress per epoch, a results table, a run directory."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

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
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="override train.device: cpu, cuda, cuda:N (one GPU by index) or auto")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=None,
                   help="override train.precision: bf16 or fp16 autocast on GPUs (fp16 with loss scaling); "
                        "the CPU trains in fp32")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="where run directories go: DIR/<spec name>/<timestamp>/ (default: runs)")
    p.add_argument("--log", action="append", default=[], choices=["tensorboard", "mlflow"],
                   help="track the run with TensorBoard or MLflow (repeatable; same as train.log in the spec)")
    p.add_argument("--name", default=None, help="name the run: DIR/<spec name>/<NAME>/ instead of a timestamp "
                   "(`nnspec runs` lists runs by name)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="train on the first N examples only")
    p.add_argument("--ensemble", type=int, default=None, metavar="N", help="train N members with seeds seed..seed+N-1")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run from its last completed epoch")
    p.add_argument("--quiet", action="store_true", help="print only the run directory and the results")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="data-parallel replicas on this machine: torch starts N processes through "
                        "torch.distributed.run (one per GPU, or CPU processes); keras uses N devices "
                        "(JAX DataParallel, TensorFlow MirroredStrategy). train.batch_size stays the global batch")


def _positive(args, err) -> bool:
    for name in ("epochs", "batch_size", "limit", "ensemble", "nproc"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1 (got {value})", file=err)
            return False
    if args.lr is not None and args.lr <= 0:
        print(f"error: --lr must be > 0 (got {args.lr})", file=err)
        return False
    return True


def run(args, out, err) -> int:

    if not _positive(args, err):
        return 2
    if not args.spec and not args.resume:
        print("error: give a SPEC to train, or --resume RUN_DIR", file=err)
        return 2
    spec = None
    if not args.resume:
        from nnspec.pipeline import load

        overrides = list(args.overrides)
        if args.log:
            overrides.append(f"train.log=[{', '.join(dict.fromkeys(args.log))}]")
        spec = load(args.spec, overrides=overrides)
    elif args.overrides:
        print("error: --set changes a new run; a resumed run continues with the spec and overrides it started with",
              file=err)
        return 2
    elif args.backend is not None:
        print("note: --resume continues on the run's own backend; --backend is ignored", file=err)
    from nnspec.training.parallel import World

    world = World.from_env()
    backend = _run_backend(args.resume) if args.resume else (args.backend or "torch")
    if (args.nproc or 1) > 1 and not world.distributed and backend == "torch":
        return _launch(args, spec, err)
    if world.distributed:
        return _replica(args, spec, out, err, world)
    return _train(args, spec, out, err, replicas=args.nproc if backend == "keras" else None)


def _run_backend(run_dir: str) -> str:
    from nnspec.training.rundir import RunDir

    return RunDir.open(run_dir).read_settings().backend  # a damaged settings.json is a one-line error


def _train(args, spec, out, err, replicas: int | None = None) -> int:
    from nnspec.training.run import train

    try:
        with native_logs_filtered(args.quiet):
            result = train(spec, backend=args.backend or "torch", epochs=args.epochs, batch_size=args.batch_size,
                           lr=args.lr, seed=args.seed, device=args.device, out=args.out, limit=args.limit,
                           name=args.name, ensemble=args.ensemble, resume=args.resume,
                           progress=_Quiet(out) if args.quiet else out, keras_backend=args.keras_backend,
                           replicas=replicas, precision=args.precision)
    except KeyboardInterrupt as exc:
        where = getattr(exc, "run_dir", None)
        print("interrupted" + (f"; every completed epoch is saved: nnspec train --resume {where}" if where else ""),
              file=err)
        return 130
    if args.quiet:
        from nnspec.training.run import results_text

        print(results_text(result), file=out)
    return 0


def _launch(args, spec, err) -> int:
    """``--nproc N`` on torch: check what can be checked here, once, then start N workers."""
    from nnspec.training.parallel import local_batch_size

    if args.resume:
        from nnspec.training.rundir import RunDir

        saved = RunDir.open(args.resume).read_settings()
        if saved.ensemble == 1:
            local_batch_size(saved.batch_size, args.nproc)
    else:
        from nnspec.training.settings import resolve

        settings = resolve(spec, "torch", {"batch_size": args.batch_size, "ensemble": args.ensemble})
        if settings.ensemble == 1:
            local_batch_size(settings.batch_size, args.nproc, spec, from_flag=args.batch_size is not None)
    from nnspec.backends.torch.distributed import launch

    return launch(_without_nproc(args.argv), args.nproc, err)


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _replica(args, spec, out, err, world) -> int:
    """One of several workers (torchrun, or ``--nproc``): its error goes to the launcher, shown once."""
    from nnspec.errors import UserError
    from nnspec.training.parallel import report_failure

    try:
        return _train(args, spec, out, err)
    except UserError as exc:
        report_failure(f"error: {exc}", world, err)
        return 1


# Start-up chatter that frameworks' C++ code writes straight to file descriptor 2 (absl, TensorFlow's logging),
# which no Python setting silences: "WARNING: All log messages before absl::InitializeLog() ...",
# "I0000 00:00:17... port.cc:153] oneDNN custom operations are on ...".
NATIVE_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|"
                          r"[IWE]\d{4} [\d:. ]+\d+ [\w.]+:\d+\] )")


@contextlib.contextmanager
def native_logs_filtered(active: bool) -> Iterator[None]:
    """With ``--quiet``: capture what is written to fd 2 while training, then pass on all but native log noise."""
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        stderr_fd = -1
    if not active or stderr_fd != 2:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if not NATIVE_NOISE.match(line):
                    print(line, file=sys.stderr)


class _Quiet:
    """A stream that keeps only the run-directory line."""

    def __init__(self, out):
        self.out = out

    def write(self, text: str) -> None:
        if text.startswith(("run directory:", "resuming")):
            self.out.write(text)

    def flush(self) -> None:
        self.out.flush()
