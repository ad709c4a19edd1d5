"""Running fuzz cases: in process (pytest), or in a supervised worker process (long runs).

A case passes when every command it reaches ends in a clean result or a user error. It fails as

* ``internal``: the CLI's safety net ran ("internal error: ... this is a bug in nnspec", exit 2),
  or an exception other than SpecError/UserError escaped;
* ``hang``: it used more than ``CASE_CPU_S`` seconds of CPU (interrupted there);
* ``memory``: it needed more than ``CASE_MEMORY`` bytes beyond the starting address space
  (enforced with RLIMIT_AS, so it shows as a MemoryError);
* ``crash``: the worker process died (a signal such as SIGSEGV), seen by the supervisor.

Commands per case: ``check``; when the spec is valid, also ``summary --macs --memory``, ``resolve``,
``render -o x.dot`` and ``diff`` against its unmutated seed.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from .mutate import case

CASE_CPU_S = 2.0
CASE_MEMORY = 500 * 1024 * 1024


class CaseTimeout(BaseException):
    """Raised by the CPU-time alarm; a BaseException so that no handler in nnspec swallows it."""


@dataclass
class Outcome:
    index: int
    status: str  # ok, internal, hang, memory, crash
    detail: str = ""
    seconds: float = 0.0
    origin: str = ""


@dataclass
class Totals:
    cases: int = 0
    valid: int = 0
    failures: list[Outcome] = field(default_factory=list)
    slowest: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.cases += 1
        self.slowest = max(self.slowest, outcome.seconds)
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if outcome.status == "valid":
            self.valid += 1
        elif outcome.status not in ("ok", "valid"):
            self.failures.append(outcome)

    def line(self) -> str:
        bad = {k: self.counts.get(k, 0) for k in ("internal", "hang", "memory", "crash")}
        return (f"{self.cases} cases ({self.valid} valid specs), internal errors {bad['internal']}, "
                f"hangs {bad['hang']}, memory {bad['memory']}, crashes {bad['crash']}; "
                f"slowest case {self.slowest:.2f} s CPU")


def _address_space() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * resource.getpagesize()


@contextlib.contextmanager
def bounded(memory: int | None = CASE_MEMORY):
    """Limit the address space to its current size + ``memory`` and arm a CPU-time alarm handler."""
    old_limit = resource.getrlimit(resource.RLIMIT_AS)
    old_handler = signal.getsignal(signal.SIGPROF)

    def on_alarm(signum, frame):
        raise CaseTimeout()

    signal.signal(signal.SIGPROF, on_alarm)
    if memory is not None:
        hard = old_limit[1]
        want = _address_space() + memory
        resource.setrlimit(resource.RLIMIT_AS, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        resource.setrlimit(resource.RLIMIT_AS, old_limit)
        signal.signal(signal.SIGPROF, old_handler)


def warm_up() -> None:
    """Import everything a case can reach, so the memory bound measures the case and not imports."""
    import importlib

    for module in ("nnspec.cli.main", "nnspec.cli.check", "nnspec.cli.summary", "nnspec.cli.resolve",
                   "nnspec.cli.render", "nnspec.cli.diff", "nnspec.report.summary", "nnspec.report.diagram",
                   "nnspec.report.diff", "nnspec.analysis", "nnspec.spec.expand", "difflib", "yaml"):
        importlib.import_module(module)
    from nnspec.layers import registry
    from nnspec.spec.validate import _validator_for

    for name in registry.all_types():
        _validator_for(name)
    _validator_for("skeleton")


def _cli(argv: list[str]) -> tuple[int, str]:
    from nnspec.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, err.getvalue()


def run_case(index: int, seed: int, workdir: str) -> Outcome:
    """Run one case (inside :func:`bounded`); never raises except KeyboardInterrupt."""
    origin, text = case(seed, index)
    path = os.path.join(workdir, "case.yaml")
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
        fh.write(text)
    seed_path = os.path.join(workdir, "seed.yaml")
    start = time.process_time()
    status, detail = "ok", ""
    signal.setitimer(signal.ITIMER_PROF, CASE_CPU_S)
    try:
        code, err = _cli(["check", path])
        runs = [("check", code, err)]
        if code == 0:
            status = "valid"
            from .mutate import ROOT

            with open(seed_path, "w", encoding="utf-8") as fh:
                fh.write((ROOT / origin.split(" ")[0]).read_text(encoding="utf-8"))
            for argv in (["summary", "--macs", "--memory", path], ["resolve", path],
                         ["render", path, "-o", os.path.join(workdir, "case.dot")], ["diff", seed_path, path]):
                code, err = _cli(argv)
                runs.append((argv[0], code, err))
        for command, code, err in runs:
            if code == 2 and "internal error" in err:
                status, detail = "internal", f"{command}: {err.strip().splitlines()[-1][:300]}"
                break
    except CaseTimeout:
        status, detail = "hang", f"over {CASE_CPU_S} s of CPU"
    except MemoryError:
        status, detail = "memory", f"over {CASE_MEMORY // 2**20} MB"
    except Exception as exc:  # main() catches these itself; this would be a bug in the harness or main
        status, detail = "internal", f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    seconds = time.process_time() - start
    if status in ("ok", "valid") and seconds > CASE_CPU_S:
        status, detail = "hang", f"{seconds:.2f} s of CPU"
    return Outcome(index, status, detail, seconds, origin)


def run_in_process(seed: int, cases: int, seconds: float | None = None, memory: int | None = CASE_MEMORY) -> Totals:
    """Run cases ``0..cases-1`` here (stopping early after ``seconds``); crashes would kill this process."""
    totals = Totals()
    deadline = time.monotonic() + seconds if seconds else None
    os.environ.pop("NNSPEC_DEBUG", None)
    warm_up()
    with tempfile.TemporaryDirectory(prefix="nnspec-fuzz-") as workdir, bounded(memory):
        for index in range(cases):
            if deadline and time.monotonic() > deadline:
                break
            totals.add(run_case(index, seed, workdir))
    return totals


# --- long runs: a supervised worker -----------------------------------------------------------------

def worker(seed: int, start: int, stop: int) -> None:
    """Run cases start..stop-1, printing `begin i` before and the outcome after each (for the supervisor)."""
    os.environ.pop("NNSPEC_DEBUG", None)
    warm_up()
    with tempfile.TemporaryDirectory(prefix="nnspec-fuzz-") as workdir, bounded():
        for index in range(start, stop):
            print(f"begin {index}", flush=True)
            o = run_case(index, seed, workdir)
            detail = o.detail.replace("\n", " ")
            print(f"done {index} {o.status} {o.seconds:.3f} {o.origin.replace(' ', '_')} {detail}", flush=True)


def supervise(seed: int, cases: int, report_every: int = 5000, wall_limit: float = 60.0) -> Totals:
    """Run ``cases`` cases in a worker process; a worker that dies or stalls marks its case and is restarted."""
    totals = Totals()
    index = 0
    started = time.monotonic()
    while index < cases:
        cmd = [sys.executable, "-m", "tests.fuzz", "--worker", "--seed", str(seed), "--start", str(index),
               "--stop", str(cases)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                cwd=str(_repo_root()))
        current = None
        assert proc.stdout is not None
        last = time.monotonic()
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        stalled = False
        while True:
            if not sel.select(timeout=wall_limit):
                stalled = True  # no output for wall_limit seconds: a hang the CPU alarm did not catch
                proc.kill()
                break
            line = proc.stdout.readline()
            if not line:
                break
            parts = line.rstrip("\n").split(" ", 5)
            if parts[0] == "begin":
                current = int(parts[1])
            elif parts[0] == "done":
                o = Outcome(int(parts[1]), parts[2], parts[5] if len(parts) > 5 else "", float(parts[3]), parts[4])
                totals.add(o)
                current = None
                index = o.index + 1
                if totals.cases % report_every == 0:
                    print(f"[{time.monotonic() - started:.0f} s] {totals.line()}", flush=True)
            last = time.monotonic()
        code = proc.wait()
        sel.close()
        if current is not None:
            status = "hang" if stalled else "crash"
            totals.add(Outcome(current, status, f"worker exit {code} after {time.monotonic() - last:.0f} s",
                               0.0, case(seed, current)[0]))
            index = current + 1
        elif code != 0 and index < cases:
            raise RuntimeError(f"the fuzz worker failed to start (exit {code})")
    return totals


def _repo_root():
    from .mutate import ROOT

    return ROOT
