"""docs/reference.md is generated, complete and correct; the JSON Schema ships inside the package."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

import nnspec
from nnspec.cli.main import main
from nnspec.layers.registry import all_types
from nnspec.report.reference import all_examples, reference_markdown
from nnspec.spec.schema import full_schema
from tests.conftest import ROOT

REFERENCE = ROOT / "docs" / "reference.md"

BASE = yaml.safe_load("""
name: base
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 4, kernel_size: 3, activation: relu}
head:
  - flatten
  - dense: {units: 10, activation: softmax}
""")


def test_committed_reference_is_up_to_date():
    out, err = io.StringIO(), io.StringIO()
    code = main(["docs", "--check", str(REFERENCE)], out, err)
    assert code == 0, err.getvalue()  # regenerate with `nnspec docs -o docs/reference.md`


def test_docs_check_reports_a_stale_file(tmp_path):
    stale = tmp_path / "reference.md"
    stale.write_text(reference_markdown().replace("| `epochs` |", "| `epochz` |"))
    err = io.StringIO()
    assert main(["docs", "--check", str(stale)], io.StringIO(), err) == 1
    assert "is stale: regenerate it with `nnspec docs -o docs/reference.md`" in err.getvalue()


def test_reference_covers_every_section_option_and_layer():
    text = reference_markdown()
    schema = full_schema()
    for key in schema["properties"]:
        assert f"| `{key}` |" in text, key
    for section in ("train", "data"):
        for option in schema["properties"][section]["properties"]:
            assert f"| `{option}` |" in text and f"{section}: {{{option}:" in text, (section, option)
    for name, cls in all_types(include_plugins=False).items():
        if name == "input":
            continue
        layer = text.split(f"#### {name}\n", 1)[1].split("\n#### ", 1)[0]
        for attr, spec in cls.attributes.items():
            row = next(line for line in layer.splitlines() if line.startswith(f"| `{attr}` |"))
            assert ("required" if spec.required else "—" if spec.default is None else f"`{json.dumps(spec.default)}`"
                    if isinstance(spec.default, bool) else f"`{spec.default}`") in row, (name, attr, row)
    # A default written in the schema's description shows in its own column.
    assert "| `batch_size` | integer ≥ 1 | 64 | Examples per step. | `train: {batch_size: 64}` |" in text


@pytest.mark.parametrize(("path", "value"), all_examples(), ids=lambda v: ".".join(v) if isinstance(v, tuple) else "")
def test_every_example_in_the_reference_is_a_valid_spec(path, value):
    data = copy.deepcopy(BASE)
    where = data
    for key in path[:-1]:
        where = where.setdefault(key, {})
    where[path[-1]] = value
    problems = nnspec.check("<reference example>", text=yaml.safe_dump(data))
    assert problems == [], [d.format() for d in problems]


def test_schema_path_names_the_packaged_schema():
    out = io.StringIO()
    assert main(["schema", "--path"], out, io.StringIO()) == 0
    path = out.getvalue().strip()
    assert os.path.dirname(path) == os.path.join(os.path.dirname(nnspec.__file__), "schemas")
    assert json.load(open(path)) == full_schema()
    assert os.path.samefile(path, ROOT / "schemas" / "nnspec.schema.json")  # the repository's path links to it


def test_the_wheel_ships_the_schema(tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "nnspec", tree / "nnspec", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                           str(tmp_path / "dist"), str(tree)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and "No module named" in done.stderr:
        pytest.skip(f"cannot build wheels here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("nnspec-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = json.loads(archive.read("nnspec/schemas/nnspec.schema.json"))
    assert shipped == full_schema()
