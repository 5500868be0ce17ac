"""Commands kiko suggests in messages and in the report are shell-quoted: pasted into a shell,
they name the same paths, even a home with a space or `&` in its name."""

import html
import re
import shlex

import pytest

from kiko import ask, report
from kiko.pipeline import environment

AWKWARD = "my home & co's"  # a space, a shell operator and a quote


def _commands(text: str, program: str):
    """The words of each `program ...` command in `text` (in backquotes or HTML code)."""
    found = re.findall(r"`(%s [^`]*)`|<code>(%s [^<]*)</code>" % (program, program), text)
    return [shlex.split(html.unescape(a or b)) for a, b in found]


def test_suggested_run_command_names_an_awkward_home(tmp_path):
    home = str(tmp_path / AWKWARD)
    with pytest.raises(ask.AskError) as raised:
        ask.pushed_model_dir(home)
    assert _commands(str(raised.value), "kiko") == [["kiko", "run", "--home", home]]


def test_suggested_mkdir_names_an_awkward_parent(tmp_path):
    parent = tmp_path / AWKWARD
    with pytest.raises(environment.EnvironmentProblem) as raised:
        environment.prepare_home(str(parent / "home"))
    (command,) = re.findall(r"\((mkdir -p .*)\) or", str(raised.value))
    assert shlex.split(command) == ["mkdir", "-p", str(parent)]


def test_report_tensorboard_command_names_an_awkward_logdir(tmp_path):
    logdir = str(tmp_path / AWKWARD / "model_run")
    page = report._training_section({"members": [], "history": None, "blend": None,
                                     "logdir": logdir})
    assert _commands(page, "tensorboard") == [["tensorboard", "--logdir", logdir]]
