"""Hostile and broken input: clear errors, fast, never a traceback, nothing executed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import nnspec
from nnspec.errors import SpecError

VALID = """
name: ok
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 8, kernel_size: 3, activation: relu}
  - max_pool2d: 2
head:
  - flatten
  - dense: {units: 10, activation: softmax}
"""


def codes(path):
    return [d.code for d in nnspec.check(path)]


def test_python_tags_are_rejected_and_nothing_runs(write_spec, tmp_path):
    marker = tmp_path / "pwned"
    path = write_spec(f"name: !!python/object/apply:os.system ['touch {marker}']\ninputs: {{}}\n")
    diags = nnspec.check(path)
    assert diags and diags[0].code == "yaml" and "not allowed" in diags[0].message
    assert not marker.exists()


def test_custom_tag_rejected(write_spec):
    path = write_spec("inputs: !include other.yaml\n")
    assert "tag !include is not allowed" in nnspec.check(path)[0].message


def test_billion_laughs_fails_fast(write_spec):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("inputs: *a9")
    path = write_spec("\n".join(lines) + "\n")
    start = time.perf_counter()
    diags = nnspec.check(path)
    assert time.perf_counter() - start < 2.0
    assert diags[0].code == "limit" and "aliases" in diags[0].message


def test_deep_nesting_is_limited(write_spec):
    path = write_spec("inputs: " + "[" * 200 + "]" * 200 + "\n")
    assert codes(path) == ["limit"]


def test_duplicate_keys_are_errors(write_spec):
    path = write_spec(VALID + "name: again\n")
    diags = nnspec.check(path)
    assert [d.code for d in diags] == ["duplicate-key"]
    assert diags[0].line == 11 and "first given on line 2" in diags[0].message


def test_binary_file(write_spec, tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    d = nnspec.check(str(p))[0]
    assert d.code == "input" and "binary" in d.message


def test_not_utf8(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    d = nnspec.check(str(p))[0]
    assert d.code == "input" and "UTF-8" in d.message


def test_too_large(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("# " + "x" * (3 * 1024 * 1024))
    assert codes(str(p)) == ["limit"]


def test_missing_file_and_directory(tmp_path):
    assert "no such file" in nnspec.check(str(tmp_path / "nope.yaml"))[0].message
    assert "directory" in nnspec.check(str(tmp_path))[0].message


def test_empty_and_non_mapping(write_spec):
    assert nnspec.check(write_spec(""))[0].message == "the file is empty"
    assert "mapping" in nnspec.check(write_spec("- a\n- b\n"))[0].message


def test_yaml_syntax_error_is_located(write_spec):
    d = nnspec.check(write_spec("inputs:\n  img: {shape: [28, 28\n"))[0]
    assert d.code == "yaml" and d.line >= 2


def test_absurd_size_is_reported_not_allocated(write_spec):
    path = write_spec("inputs:\n  x: {shape: [1000000]}\nencoder:\n  - dense: 1000000\n  - dense: 1000000\n")
    d = nnspec.check(path)[0]
    assert d.code == "size" and "2,000,002,000,000 parameters" in d.message


def test_huge_repeat_is_refused(write_spec):
    text = """
inputs: {x: {shape: [4]}}
blocks:
  b: {layers: [dense: 4]}
encoder:
  - block: {use: b, repeat: 100000000}
"""
    d = nnspec.check(write_spec(text))[0]
    assert d.code == "size"


def test_load_raises_spec_error_with_diagnostics(write_spec):
    with pytest.raises(SpecError) as info:
        nnspec.load(write_spec("inputs: 3\n"))
    assert info.value.diagnostics and "inputs" in str(info.value)


MUTATIONS = [
    lambda t: t.replace("filters: 8", "filters: [8]"),
    lambda t: t.replace("shape: [28, 28, 1]", "shape: 28"),
    lambda t: t.replace("shape: [28, 28, 1]", "shape: [28, -1, 1]"),
    lambda t: t.replace("shape: [28, 28, 1]", "shape: []"),
    lambda t: t.replace("encoder:", "encoder: 5\nx:"),
    lambda t: t.replace("- flatten", "- {}"),
    lambda t: t.replace("- flatten", "- flatten: {inputs: [1, 2]}"),
    lambda t: t.replace("- flatten", "- flatten: [1]"),
    lambda t: t.replace("- flatten", "- block: 3"),
    lambda t: t.replace("- flatten", "- block: {use: 3}"),
    lambda t: t.replace("img:", "1:"),
    lambda t: t.replace("img:", "? [a]\n  :"),
    lambda t: t.replace("max_pool2d: 2", "max_pool2d: {pool_size: '${1/0}'}"),
    lambda t: t.replace("max_pool2d: 2", "max_pool2d: '${2'"),
    lambda t: t.replace("units: 10", "units: 1e400"),
    lambda t: t.replace("units: 10", "units: .nan"),
    lambda t: t + "loss: {a: mse, b: [1]}\n",
    lambda t: t + "train: {optimizer: {type: sgd, lr: -1}}\n",
    lambda t: t.replace("head:", "heads:\n  a:\n    - dense: 2\nhead:"),
    lambda t: t.replace("inputs:", "inputs: null\nfoo:"),
]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=range(len(MUTATIONS)))
def test_mutations_give_diagnostics_not_exceptions(write_spec, mutate):
    path = write_spec(mutate(VALID))
    diags = nnspec.check(path)  # any exception other than a clean result fails the test
    for d in diags:
        assert d.message and d.code


def test_cli_never_shows_a_traceback(write_spec):
    path = write_spec("inputs: !!python/name:os.system\n")
    proc = subprocess.run([sys.executable, "-m", "nnspec", "check", path], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr
