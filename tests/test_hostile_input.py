"""Hostile and broken input: clear errors, fast, never a traceback, nothing executed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from conftest import ROOT

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
    start = time.process_time()
    diags = nnspec.check(path)
    assert time.process_time() - start < 2.0
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


# --- issue 14: reproducers ------------------------------------------------------------------------


@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{a: ", "}")])
def test_deep_flow_nesting_is_refused_before_the_parser_recurses(tmp_path, opener, closer):
    """30,000 nested brackets overflowed the C stack in the YAML composer (SIGSEGV, exit 139)."""
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + opener * 30000 + closer * 30000)
    proc = subprocess.run([sys.executable, "-m", "nnspec", "check", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1, proc.stderr[-500:]
    assert "nests deeper than 64 levels" in proc.stderr and "Traceback" not in proc.stderr
    assert max(len(line) for line in proc.stderr.splitlines()) < 200  # the 60 KB line is shown as a window
    with pytest.raises(SpecError, match="nests deeper"):
        nnspec.load(str(path))


def test_deep_block_nesting_is_refused(write_spec):
    path = write_spec("".join(" " * i + "- \n" for i in range(1500)))
    d = nnspec.check(path)[0]
    assert d.code == "limit" and d.line == 65


EXPRESSIONS = [
    ("${round(1, -10**18)}", "digit count"),
    ("${s * 10**10}", "needs numbers"),
    ("${s + s}", "needs numbers"),
    ("${2 ** 10 ** 10}", "too large"),
    ("${10 ** 18 * 10 ** 18}", "too large"),
    ("${(10 ** 9) ** (10 ** 9)}", "too large"),
    ("${1e308 * 10}", "too large"),
    ("${max(1)}", ""),
    ("${0 ** -1}", "division by zero"),
    ("${1 % 0}", "division by zero"),
    ("${min(*[1])}", "not allowed"),
    ("${int(s)}", "needs numbers"),
    ("${" + "-" * 90 + "1}", ""),
    ("${" + "-" * 190 + "1}", "too complex"),
    ("${" + "(" * 99 + "1" + ")" * 99 + "}", ""),
]


@pytest.mark.parametrize("expr,fragment", EXPRESSIONS, ids=range(len(EXPRESSIONS)))
def test_expressions_are_bounded_in_time_size_and_magnitude(expr, fragment):
    from nnspec.spec.expr import ExpressionError, evaluate

    start = time.process_time()
    try:
        result = evaluate(expr, {"s": "abc", "lst": [1, 2]})
    except ExpressionError as exc:
        assert fragment and fragment in str(exc), str(exc)
    else:
        assert not fragment, f"{expr} gave {result!r}"
        assert isinstance(result, (int, float)) and abs(result) <= 10**18
    assert time.process_time() - start < 0.5


def test_repeat_of_a_block_in_error_is_not_expanded(write_spec):
    text = """
inputs: {x: {shape: [4]}}
blocks:
  bad: {params: {w: 4}, layers: [dense: {units: "${w * nope}"}]}
encoder:
  - block: {use: bad, repeat: 9000}
"""
    start = time.process_time()
    diags = nnspec.check(write_spec(text))
    assert time.process_time() - start < 2.0
    assert [d.code for d in diags] == ["expression"]


def test_nested_repeats_are_bounded(write_spec):
    text = """
inputs: {x: {shape: [4]}}
blocks:
  inner: {layers: [dense: 4]}
  outer: {layers: [block: {use: inner, repeat: 1000}]}
encoder:
  - block: {use: outer, repeat: 1000}
"""
    start = time.process_time()
    diags = nnspec.check(write_spec(text))
    assert time.process_time() - start < 10.0
    assert diags and diags[0].code == "size"


def test_whole_number_float_gets_a_hint(write_spec):
    d = nnspec.check(write_spec("inputs: {x: {shape: [4]}}\nencoder:\n  - dense: {units: 10.0}\n"))[0]
    assert d.code == "type" and "(got 10.0)" in d.message and d.hint.startswith("write 10")
    d = nnspec.check(write_spec("inputs: {x: {shape: [4]}}\ntrain: {epochs: 3.0}\nencoder:\n  - dense: 2\n"))[0]
    assert d.code == "type" and "epochs" in d.message


def test_symbolic_dimension_into_same_padding_is_fine(write_spec):
    text = "inputs: {x: {shape: [n, 28, 1]}}\nencoder:\n  - conv2d: {filters: 4, kernel_size: 3, padding: same}\n"
    assert nnspec.check(write_spec(text)) == []


def test_huge_input_dimension_is_refused_before_any_arithmetic(write_spec, capsys):
    from nnspec.cli.main import main

    path = write_spec("inputs: {x: {shape: [1" + "0" * 400 + "]}}\nencoder:\n  - dense: 1\n")
    assert main(["summary", "--memory", path]) == 1
    err = capsys.readouterr().err
    assert "401 digits is too large" in err and "internal error" not in err


PLUGINS = {
    "broken_layers": "raise ImportError('no module named tensorflow_addons')\n",
    "clash_layers": textwrap.dedent('''
        from nnspec.layers import LayerType
        class Dense(LayerType):
            name = "dense"
            keras_class = "Dense"
        class Twice(LayerType):
            name = "twice"
            keras_class = "Twice"
    '''),
    "other_layers": "from nnspec.layers import LayerType\nclass Twice(LayerType):\n    name = 'twice'\n    keras_class = 'T'\n",
    "not_a_layer": "THING = 42\n",
}


def test_broken_and_colliding_plugins_warn_once_and_the_rest_works(tmp_path):
    entries = {
        "broken_layers": "thing = broken_layers:Thing",
        "clash_layers": "dense = clash_layers:Dense\ntwice = clash_layers:Twice",
        "other_layers": "twice = other_layers:Twice",
        "not_a_layer": "thing = not_a_layer:THING",
    }
    for module, source in PLUGINS.items():
        (tmp_path / f"{module}.py").write_text(source)
        dist = tmp_path / f"{module}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[nnspec.layers]\n{entries[module]}\n")
    spec = tmp_path / "s.yaml"
    spec.write_text("inputs: {x: {shape: [4]}}\nencoder:\n  - dens: 3\n  - twice\n")
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "nnspec", "check", str(spec)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 4, proc.stderr
    assert any("broken-layers" in w and "failed to load" in w for w in warnings)
    assert any("clash-layers" in w and "`dense`" in w and "built-in" in w for w in warnings)
    assert any("`twice`" in w and "another plugin" in w for w in warnings)
    assert any("not-a-layer" in w and "not a LayerType" in w for w in warnings)
    assert "unknown layer type `dens`" in proc.stderr and "did you mean `dense`" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "nnspec", "layers"], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)
    assert proc.returncode == 0 and "twice" in proc.stdout and "conv2d" in proc.stdout, proc.stderr


def _corpus() -> list[tuple[str, str]]:
    """Hand-made hostile specs: the golden files, the mutations above and the issue's reproducers."""
    import pathlib

    out = [(p.name, p.read_text()) for p in sorted((pathlib.Path(__file__).parent / "golden").glob("*.yaml"))]
    out += [(f"mutation{i}", m(VALID)) for i, m in enumerate(MUTATIONS)]
    out += [(f"expr{i}", VALID.replace("units: 10", f"units: '{e}'")) for i, (e, _) in enumerate(EXPRESSIONS)]
    out.append(("deep", "a: " + "[" * 3000 + "]" * 3000))
    return out


@pytest.mark.parametrize("name,text", _corpus(), ids=[n for n, _ in _corpus()])
def test_no_corpus_case_reaches_the_internal_error_safety_net(tmp_path, name, text):
    """check, summary, resolve, render and diff on every hand-made hostile spec: exit 0 or 1, never 2."""
    import io

    from nnspec.cli.main import main

    path = tmp_path / "spec.yaml"
    path.write_text(text)
    good = tmp_path / "good.yaml"
    good.write_text(VALID)
    for argv in (["check", str(path)], ["summary", "--memory", "--macs", str(path)], ["resolve", str(path)],
                 ["render", str(path), "-o", str(tmp_path / "d.dot")], ["diff", str(good), str(path)]):
        err = io.StringIO()
        code = main(argv, out=io.StringIO(), err=err)
        assert code in (0, 1), f"{argv[0]}: exit {code}: {err.getvalue()[-500:]}"
        assert "internal error" not in err.getvalue()


@pytest.mark.parametrize("declared", ["inputs: [35, {a: 1}]", "inputs: x", "outputs: [$prev, 7]", "outputs: {a: b}"])
def test_a_block_with_malformed_inputs_or_outputs_is_an_error_not_a_crash(declared):
    """Found by the fuzzer: a block's `inputs:` holding a mapping crashed expansion (unhashable dict)."""
    text = f"""
name: m
inputs:
  img: {{shape: [4, 4, 3]}}
blocks:
  cell:
    {declared}
    layers: [relu]
encoder:
  - block: {{use: cell}}
  - flatten
"""
    problems = nnspec.check("m.yaml", text=text)
    assert problems and all(p.line > 0 for p in problems)
    assert any(p.line == 7 for p in problems), [str(p) for p in problems]
