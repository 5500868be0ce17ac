"""The `kiko` command and the Makefile's entry points, as a newcomer meets them."""

import os
import re
import subprocess
import sys

import pytest

from kiko import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("command", ["run", "inspect", "report", "predict", "recommend"])
def test_help_names_the_kiko_command(command, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["kiko"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: kiko {command} ")


# Prints `kiko ARGS...`'s exit code, then whether answering it loaded TensorFlow.
_HELP_PROBE = """
import sys
from kiko.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
print(code, "tensorflow" in sys.modules)
"""


@pytest.mark.parametrize("argv", [["--help"]] + [[command, "--help"]
                                                 for command in cli._COMMANDS])
def test_help_does_not_load_tensorflow(argv):
    """`kiko --help` and `kiko COMMAND --help` answer without importing TensorFlow: each
    command module loads it only when the command runs."""
    result = subprocess.run([sys.executable, "-c", _HELP_PROBE, *argv], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "0 False", result.stdout[-2000:]


def test_unknown_command_lists_the_commands(capsys):
    assert cli.main(["nope"]) == 2
    err = capsys.readouterr().err
    for command in ("run", "inspect", "report", "predict", "recommend"):
        assert f"\n  {command} " in err


def test_make_bench_runs_scripts_that_exist():
    with open(os.path.join(REPO, "Makefile")) as f:
        names = re.search(r"^BENCH \?= (.+)$", f.read(), re.MULTILINE).group(1).split()
    assert names
    for name in names:
        assert os.path.isfile(os.path.join(REPO, "benchmarks", f"{name}.py")), name
