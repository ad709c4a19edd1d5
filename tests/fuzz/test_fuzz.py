"""The fuzzer's bounded CI slice: mutated specs never reach the CLI's internal-error path, never take
over 2 s of CPU and never need 500 MB. NNSPEC_FUZZ_SECONDS / NNSPEC_FUZZ_SEED change the budget and seed."""

from __future__ import annotations

import os

from .engine import run_in_process
from .mutate import case, corpus

SECONDS = float(os.environ.get("NNSPEC_FUZZ_SECONDS", "30"))
SEED = int(os.environ.get("NNSPEC_FUZZ_SEED", "14"))


def test_cases_are_reproducible_and_varied():
    assert len(corpus()) >= 10
    assert case(SEED, 7) == case(SEED, 7)
    texts = {case(SEED, i)[1] for i in range(200)}
    assert len(texts) > 180


def test_fuzz_slice_has_no_internal_errors_hangs_or_memory_blowups():
    totals = run_in_process(SEED, cases=5000, seconds=SECONDS)
    print(totals.line())
    assert totals.cases >= 100, totals.line()  # the budget ran real cases, not just setup
    assert totals.valid > 0, "no mutated spec stayed valid: the later commands were never exercised"
    failures = "\n".join(f"case {o.index} [{o.status}] {o.origin}: {o.detail}" for o in totals.failures[:20])
    assert not totals.failures, f"{totals.line()}\n{failures}\nreplay: python -m tests.fuzz --show INDEX --seed {SEED}"
