"""Shell completion: the generated scripts are valid and complete commands, options, spec files and layer names."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from nnspec.cli.completion import layer_names
from nnspec.cli.main import COMMANDS, main

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def _script(shell: str) -> str:
    out = io.StringIO()
    assert main(["--print-completion", shell], out, io.StringIO()) == 0
    return out.getvalue()


@needs_bash
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_bash_and_zsh_scripts_are_valid_shell(shell, tmp_path):
    path = tmp_path / f"nnspec.{shell}"
    path.write_text(_script(shell))
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@needs_bash
def test_bash_completes_commands_options_specs_and_layers(tmp_path):
    (tmp_path / "script.bash").write_text(_script("bash"))
    for name in ("net.yaml", "other.yml", "notes.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "runs").mkdir()
    driver = """
source ./script.bash
complete_line() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _nnspec; echo "${COMPREPLY[*]}"; }
complete_line nnspec ""
complete_line nnspec tr
complete_line nnspec layers conv
complete_line nnspec check ""
complete_line nnspec train net.yaml --backend ""
complete_line nnspec train net.yaml --set train.l
complete_line nnspec render net.yaml --le
complete_line nnspec evaluate ""
"""
    done = subprocess.run(["bash", "-c", driver], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = [set(line.split()) for line in done.stdout.splitlines()]
    everything, train, conv, specs, backends, settings, level, run_dirs = lines
    assert set(COMMANDS) <= everything
    assert train == {"train"}
    assert conv == {n for n in layer_names() if n.startswith("conv")} and {"conv2d", "conv2d_transpose"} <= conv
    assert specs == {"net.yaml", "other.yml", "runs/"}  # spec files and folders, not notes.txt
    assert backends == {"torch", "keras"}
    assert settings == {"train.lr=", "train.label_smoothing=", "train.log="}
    assert level == {"--level"}
    assert run_dirs == {"runs/"}


def test_fish_script_names_every_command_and_layer():
    text = _script("fish")
    for name in COMMANDS:
        assert f"-a {name} -d " in text
    assert " ".join(layer_names()) in text
    assert "-n '__fish_seen_subcommand_from train' -l backend -xa 'torch keras'" in text
    if shutil.which("fish"):
        done = subprocess.run(["fish", "--no-execute"], input=text, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr


def test_unknown_shell_is_refused(capsys):
    assert main(["--print-completion", "tcsh"], io.StringIO(), io.StringIO()) == 2
    assert "invalid choice: 'tcsh'" in capsys.readouterr().err
