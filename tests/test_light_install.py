"""A light install (`pip install nnspec`): the core's dependencies are exactly what the core imports,
and commands that need an extra name the extra instead of failing with an internal error."""

from __future__ import annotations

import subprocess
import sys

import tomllib
from conftest import ROOT

DISTRIBUTION_MODULES = {"pyyaml": "yaml", "numpy": "numpy"}

LIGHT_RUN = """
import sys
already = {{m.split('.')[0] for m in sys.modules}}  # what site-packages' .pth files load (certifi, ...)
from nnspec.cli.main import main
spec = 'specs/fashion_mnist_vgg.yaml'
for argv in (['check', spec], ['summary', spec], ['diff', spec, 'specs/fashion_mnist_cnn.yaml'], ['schema'],
             ['resolve', spec], ['render', spec, '-o', {dot!r}], ['layers']):
    main(argv, out=open('/dev/null', 'w'), err=sys.stderr)
runtime = {{'nnspec', 'cython_runtime'}}  # cython_runtime: the loader of compiled extensions (PyYAML's)
third_party = {{m.split('.')[0] for m in sys.modules}} - already - set(sys.stdlib_module_names) - runtime
print(' '.join(sorted(m for m in third_party if not m.startswith('_'))))
"""


def _core_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("<")[0].split(";")[0].strip().lower() for dep in
             project["dependencies"]}
    return {DISTRIBUTION_MODULES.get(n, n) for n in names}


def test_core_dependencies_are_what_the_light_commands_import(tmp_path):
    proc = subprocess.run([sys.executable, "-c", LIGHT_RUN.format(dot=str(tmp_path / "m.dot"))], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported = set(proc.stdout.split())
    assert imported == _core_dependencies(), f"imported {sorted(imported)}; pyproject lists {_core_dependencies()}"


BLOCKED = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
from nnspec.cli.main import main
sys.exit(main({argv!r}))
"""


def run_without(blocked, argv):
    return subprocess.run([sys.executable, "-c", BLOCKED.format(blocked=blocked, argv=argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_export_without_safetensors_names_the_extra(tmp_path):
    proc = run_without(["safetensors"], ["export", "specs/fashion_mnist_cnn.yaml", "--weights",
                                         str(tmp_path / "w.safetensors"), "--format", "torchscript",
                                         "-o", str(tmp_path / "m.pt")])
    assert proc.returncode == 1, proc.stderr
    assert "internal error" not in proc.stderr
    assert "needs safetensors" in proc.stderr and "pip install 'nnspec[torch]'" in proc.stderr


def test_export_and_inspect_without_torch_name_the_extra(tmp_path):
    proc = run_without(["torch", "safetensors"], ["export", "specs/fashion_mnist_cnn.yaml", "--format", "onnx",
                                                  "-o", str(tmp_path / "m.onnx")])
    assert proc.returncode == 1 and "internal error" not in proc.stderr
    assert "pip install 'nnspec[torch]'" in proc.stderr
