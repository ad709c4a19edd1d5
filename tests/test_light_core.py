"""The light core: checking, summarising, listing and the schema import no framework."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, SPECS

PROBE = """
import sys, io
from nnspec.cli.main import main
out = io.StringIO()
codes = [main(argv, out=out, err=out) for argv in {argvs!r}]
heavy = sorted(m for m in ("torch", "tensorflow", "keras", "jax", "matplotlib") if m in sys.modules)
print(codes, heavy)
"""


def run_probe(argvs):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(argvs=argvs)], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_check_and_summary_import_no_framework():
    argvs = [["check", *map(str, SPECS)], ["summary", str(SPECS[0])], ["summary", str(SPECS[0]), "--format", "json"],
             ["layers"], ["schema"], ["resolve", str(SPECS[0])]]
    out = run_probe(argvs)
    assert out == f"{[0] * len(argvs)} []"


def test_import_nnspec_is_light():
    code = "import sys, nnspec; print(sorted(m for m in ('torch','tensorflow','keras','yaml','jsonschema') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert json.loads(proc.stdout.replace("'", '"')) == []
