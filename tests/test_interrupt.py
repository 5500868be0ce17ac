"""A local run stopped by SIGINT (Ctrl-C: the whole process group) or SIGTERM: one line, the
summary, exit status 130/143, no traceback on the terminal, nothing left RUNNING in ML Metadata,
and the re-run resumes from the cache; the terminal shows kiko's lines only (the libraries'
warnings go to the run's log). Real runner processes on a small generated data set (slow)."""

import os
import re
import signal
import subprocess
import sys

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from kiko.data import synthetic
from kiko.pipeline import configs, nodes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INTERRUPTED = re.compile(r"^  interrupted during (\S+); re-run resumes from cache$", re.M)
# What the libraries print as they load: their place is the run's log.
_NOISE = ("FutureWarning", "cuDNN", "cuFFT", "cuBLAS", "INFO:absl")


@pytest.fixture(scope="module")
def tiny_movielens(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_movielens")
    return synthetic.generate(str(out), synthetic.GeneratorConfig(
        n_users=60, n_movies=80, n_ratings=2_000, seed=11)).out_dir


def _start(data, home, err_path):
    """A validate-only runner in its own process group (as a shell starts a job)."""
    with open(err_path, "w") as err:
        return subprocess.Popen(
            [sys.executable, "pipeline/local_runner.py", "--data", str(data), "--home",
             str(home), "--workers", "1", "--validate-only"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)


def _stop_when_started(runner, component, send):
    """Reads the console until `component` starts, then calls `send`; the whole stdout."""
    seen = []
    for line in runner.stdout:
        seen.append(line)
        if line.split()[:2] == [component, "started"]:
            send()
            break
    rest = runner.stdout.read()
    runner.wait(timeout=300)
    return "".join(seen) + rest


def _unfinished(home):
    config = mlmd_pb2.ConnectionConfig()
    config.sqlite.filename_uri = configs.Paths(str(home)).metadata_path
    store = metadata_store.MetadataStore(config)
    states = {x.id: x.last_known_state for x in store.get_executions()}
    return ([i for i, s in states.items()
             if s in (mlmd_pb2.Execution.NEW, mlmd_pb2.Execution.RUNNING)],
            [i for i, s in states.items() if s == mlmd_pb2.Execution.CANCELED])


def _group_gone(pid):
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _assert_stopped(runner, out, err_path, component, status):
    err = open(err_path).read()
    assert runner.returncode == status, out[-3000:] + err[-3000:]
    assert _INTERRUPTED.findall(out) == [component], out
    assert re.search(r"^  status +CANCELED", out, re.M), out
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err, out + err
    assert _group_gone(runner.pid), "Beam workers outlived the runner"


def _stop_run(data, home, tmp_path, component, signum):
    """Starts a run, sends `signum` to its process group once `component` started, and checks
    how it stopped (exit status 128 + signal)."""
    runner = _start(data, home, tmp_path / "run.err")
    try:
        out = _stop_when_started(runner, component, lambda: os.killpg(runner.pid, signum))
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
    _assert_stopped(runner, out, tmp_path / "run.err", component, 128 + signum)


def _rerun(data, home, tmp_path):
    """The re-run after the stop: (its console and error output, its log's text)."""
    err_path = tmp_path / "rerun.err"
    runner = _start(data, home, err_path)
    out = runner.stdout.read()
    runner.wait(timeout=600)
    terminal = out + open(err_path).read()
    assert runner.returncode == 0, terminal[-4000:]
    log_path = re.search(r"full log: (\S+)", out).group(1)
    return out, terminal, open(log_path).read()


@pytest.mark.slow
def test_ctrl_c_in_statistics_gen_cancels_it_and_the_rerun_resumes(tiny_movielens, tmp_path):
    home = tmp_path / "home"
    _stop_run(tiny_movielens, home, tmp_path, nodes.STATISTICS_GEN_ID, signal.SIGINT)
    unfinished, cancelled = _unfinished(home)
    assert unfinished == []

    out, terminal, log = _rerun(tiny_movielens, home, tmp_path)
    assert re.search(r"^  status +COMPLETE", out, re.MULTILINE)
    assert re.search(rf"^  {nodes.EXAMPLE_GEN_ID} +from cache$", out, re.M), out
    assert _unfinished(home) == ([], cancelled)
    # A re-run in an existing home loads TFX before its first step: none of it on the terminal.
    assert [word for word in _NOISE if word in terminal] == [], terminal
    assert "FutureWarning" in log


@pytest.mark.slow
def test_sigterm_in_example_gen_stops_its_workers_and_exits_143(tiny_movielens, tmp_path):
    home = tmp_path / "home"
    _stop_run(tiny_movielens, home, tmp_path, nodes.EXAMPLE_GEN_ID, signal.SIGTERM)
    assert _unfinished(home)[0] == []
    out, terminal, _ = _rerun(tiny_movielens, home, tmp_path)
    assert re.search(r"^  status +COMPLETE", out, re.MULTILINE)
    assert [word for word in _NOISE if word in terminal] == [], terminal
