"""The lint through the command line: warnings are located, exit 0 unless --strict, silenced per line,
listed by --list-warnings, and the README documents every code."""

from __future__ import annotations

import io
import json

from conftest import ROOT

from nnspec.cli.main import main
from nnspec.lint import WARNINGS

CNN = (ROOT / "specs" / "fashion_mnist_cnn.yaml").read_text()


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_softmax_head_with_binary_crossentropy_is_flagged_at_the_loss(write_spec):
    # Issue 11, item 1: this trains to a "90 % accuracy" whose argmax accuracy is far lower.
    spec = write_spec(CNN.replace("loss: categorical_crossentropy", "loss: binary_crossentropy"))
    line = CNN.splitlines().index("loss: categorical_crossentropy") + 1
    code, out, err = run("check", spec)
    assert code == 0 and "ok (1 warning)" in out
    assert f"{spec}:{line}:7: warning: loss: binary_crossentropy after a 10-unit softmax" in err
    assert err.splitlines()[0].endswith("[loss-activation]")
    assert "hint: use `categorical_crossentropy`" in err
    code, _, _ = run("check", "--strict", spec)
    assert code == 1


def test_one_unit_sigmoid_with_categorical_crossentropy_is_flagged(write_spec):
    spec = write_spec(CNN.replace("{units: 10, activation: softmax}", "{units: 1, activation: sigmoid}"))
    code, _, err = run("check", spec)
    assert code == 0 and "[loss-units]" in err and "always 0" in err


def test_a_comment_silences_one_code_on_its_line(write_spec):
    text = CNN.replace("loss: categorical_crossentropy", "loss: binary_crossentropy  # nnspec: ignore[loss-activation]")
    code, out, err = run("check", "--strict", write_spec(text))
    assert code == 0 and err == "" and ": ok —" in out
    text = CNN.replace("loss: categorical_crossentropy", "loss: binary_crossentropy  # nnspec: ignore[unused-var]")
    code, _, err = run("check", "--strict", write_spec(text))
    assert code == 1 and "[loss-activation]" in err


def test_json_lists_warnings_and_stays_ok(write_spec):
    spec = write_spec(CNN.replace("loss: categorical_crossentropy", "loss: binary_crossentropy"))
    code, out, _ = run("check", "--format", "json", spec)
    data = json.loads(out)
    assert code == 0 and data[0]["ok"]
    assert [(d["severity"], d["code"]) for d in data[0]["diagnostics"]] == [("warning", "loss-activation")]


def test_list_warnings_shows_every_code_with_its_fix():
    code, out, _ = run("check", "--list-warnings")
    assert code == 0
    for w in WARNINGS.values():
        assert w.code in out and w.fix in out


def test_readme_documents_every_warning_code():
    readme = (ROOT / "README.md").read_text()
    for code in WARNINGS:
        assert f"`{code}`" in readme, code
