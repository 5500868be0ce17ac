"""The Dockerfile, read as docker would run it (docker itself does not run here): its base image
and folder match what the compiled pipeline expects, its project installs carry the kfp extra
and the pins, and its install-time checks pass against this checkout, so a check that names
something no longer there fails here rather than in `docker build`."""

import os
import re
import shlex
import subprocess
import sys
from typing import List

import pytest

from kiko.pipeline import configs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(REPO, "Dockerfile")
# Runs a check with the image's kiko folder pointed at `argv[1]`, as if kiko were there.
_IN_FOLDER = ("import sys, kiko.pipeline.configs as c; c.IMAGE_KIKO_DIR = sys.argv[1]; "
              "exec(sys.argv[2])")


def instructions(text: str) -> List[List[str]]:
    """[keyword, arguments] per instruction, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [line.strip().split(None, 1) for line in joined.splitlines() if line.strip()]


def run_commands(text: str) -> List[List[str]]:
    """Each shell command of the RUN instructions (split at &&), as argument lists."""
    commands = []
    for keyword, arguments in instructions(text):
        if keyword.upper() == "RUN":
            for command in re.split(r"\s&&\s", arguments):
                commands.append(shlex.split(command))
    return commands


def python_checks(text: str) -> List[str]:
    """The code of every `python -c CODE` the RUN instructions run."""
    return [command[command.index("-c") + 1] for command in run_commands(text)
            if command[0].startswith("python") and "-c" in command]


def install_problems(text: str) -> List[str]:
    """What is wrong with the `pip install` commands that install this project (a path
    starting with '.'): each must take the kfp extra and the pins in constraints.txt."""
    installs = [command for command in run_commands(text) if command[:2] == ["pip", "install"]
                and any(arg.startswith(".") for arg in command[2:])]
    if len(installs) != 2:  # the dependency layer, then kiko itself
        return [f"{len(installs)} installs of the project, expected 2"]
    problems = []
    for command in installs:
        if ".[kfp]" not in command:
            problems.append(f"no .[kfp]: {shlex.join(command)}")
        pins = [value for flag, value in zip(command, command[1:]) if flag == "-c"]
        if pins != ["constraints.txt"]:
            problems.append(f"not pinned by -c constraints.txt: {shlex.join(command)}")
    return problems


def run_check(code: str, kiko_dir: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _IN_FOLDER, kiko_dir, code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def dockerfile() -> str:
    with open(DOCKERFILE) as f:
        return f.read()


def test_base_image_and_folder_are_what_the_pipeline_reads(dockerfile):
    steps = instructions(dockerfile)
    assert [a for k, a in steps if k == "FROM"][0].startswith("python:3.10")
    assert [a for k, a in steps if k == "WORKDIR"] == [configs.IMAGE_KIKO_DIR]


def test_every_project_install_has_the_kfp_extra_and_the_pins(dockerfile):
    assert install_problems(dockerfile) == []


@pytest.mark.parametrize("original, edited", [
    ("-e '.[kfp]' \\", "-e . \\"),   # kiko itself without the extra
    ("-e '.[kfp]'\n", "-e '.'\n"),   # the dependency layer without it
    ("-c constraints.txt -e '.[kfp]' \\", "-e '.[kfp]' \\"),
])
def test_an_install_without_the_extra_or_the_pins_is_found(dockerfile, original, edited):
    assert dockerfile.count(original) == 1
    assert install_problems(dockerfile.replace(original, edited))


def test_install_time_checks_pass_against_this_checkout(dockerfile):
    checks = python_checks(dockerfile)
    assert checks, "the Dockerfile checks nothing after installing kiko"
    for code in checks:
        result = run_check(code, REPO)
        assert result.returncode == 0, (code, result.stderr[-2000:])


def test_install_time_checks_fail_where_the_schemas_are_missing(dockerfile, tmp_path):
    """The checks test the image's files: pointed at an empty folder, they fail."""
    for code in python_checks(dockerfile):
        assert run_check(code, str(tmp_path)).returncode != 0, code


def test_a_stale_check_fails():
    """The check the image once ran named a configs attribute that had gone."""
    stale = ('RUN pip install --no-deps -c constraints.txt -e \'.[kfp]\' \\\n'
             '    && python -c "import os, kiko.pipeline.configs as c; '
             'assert os.path.isfile(c.IMAGE_SCHEMA_PATH)"\n')
    (code,) = python_checks(stale)
    result = run_check(code, REPO)
    assert result.returncode != 0 and "IMAGE_SCHEMA_PATH" in result.stderr
