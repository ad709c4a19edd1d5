"""`python -m tests.fuzz [--cases N] [--seed S]`: a long fuzz campaign; exit 1 when any case failed.

Replay one case with `--show I` (prints its YAML) to turn a failure into a reproducer.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--show", type=int, metavar="I", help="print case I and exit")
    p.add_argument("--in-process", action="store_true", help="no supervisor (faster; a crash ends the run)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--stop", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from .engine import run_in_process, supervise, worker
    from .mutate import case

    if args.show is not None:
        origin, text = case(args.seed, args.show)
        print(f"# case {args.show} (seed {args.seed}) from {origin}\n{text}")
        return 0
    if args.worker:
        worker(args.seed, args.start, args.stop)
        return 0
    start = time.monotonic()
    totals = run_in_process(args.seed, args.cases) if args.in_process else supervise(args.seed, args.cases)
    print(f"fuzz seed {args.seed}: {totals.line()} in {time.monotonic() - start:.0f} s")
    for o in totals.failures[:50]:
        print(f"  case {o.index} [{o.status}] {o.origin}: {o.detail}  (replay: python -m tests.fuzz --show {o.index}"
              f" --seed {args.seed})")
    return 1 if totals.failures else 0


if __name__ == "__main__":
    sys.exit(main())
