"""The local runner's guard (pipeline.run_guard): a usable home, one run in it at a time, the
clean-up after a killed run. The slow tests kill and race real runner processes and fill a real
disk (the `tmpfs` fixture: CI runs as root)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from kiko.pipeline import configs, environment, nodes, run_guard
from tests.conftest import FAST_HPARAMS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_guarded_home_holds_the_lock_for_the_run_and_releases_it(tmp_path):
    paths = configs.Paths(str(tmp_path / "home"))
    with run_guard.guarded_home(paths) as run_id:
        record = json.loads(open(paths.lock_path).read())
        assert record["run_id"] == run_id and record["pid"] == os.getpid()
    assert open(paths.lock_path).read() == ""


# ---------------------------------------------------------------------------------------------
# Real runners: killed mid-run, raced in one home, writing to a full disk (slow).


def _runner_command(data, home, *extra):
    command = [sys.executable, "pipeline/local_runner.py", "--data", str(data),
               "--home", str(home), "--workers", "1", "--rmse-upper-bound", "2.0"]
    for key, value in FAST_HPARAMS.items():
        command += ["--hparam", f"{key}={value}"]
    return command + list(extra)


class Runner:
    """A runner process in its own session, its output in files (a pipe nobody reads while it
    runs would fill up and stall it)."""

    def __init__(self, logs, data, home, *extra):
        self.out_path = os.path.join(logs, f"runner-{time.monotonic_ns()}.out")
        self.err_path = self.out_path[:-len(".out")] + ".err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.process = subprocess.Popen(_runner_command(data, home, *extra), cwd=REPO,
                                            stdout=out, stderr=err, start_new_session=True)
        self.pid = self.process.pid

    @property
    def out(self):
        with open(self.out_path) as f:
            return f.read()

    @property
    def err(self):
        with open(self.err_path) as f:
            return f.read()

    def kill_group(self):
        """Ends whatever is left of the runner's session (its Beam workers)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=60)

    def finish(self, timeout=900):
        """(exit status, stdout, stderr) once it has ended."""
        try:
            self.process.wait(timeout=timeout)
        finally:
            self.kill_group()
        return self.process.returncode, self.out, self.err


def _read_store(home):
    config = mlmd_pb2.ConnectionConfig()
    config.sqlite.filename_uri = configs.Paths(str(home)).metadata_path
    config.sqlite.connection_mode = mlmd_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _node_executions(store, node_id):
    context = store.get_context_by_type_and_name("node", f"{configs.PIPELINE_NAME}.{node_id}")
    return sorted(store.get_executions_by_context(context.id), key=lambda x: x.id)


def _run_states(store, run_id):
    context = store.get_context_by_type_and_name("pipeline_run", run_id)
    return [mlmd_pb2.Execution.State.Name(x.last_known_state)
            for x in store.get_executions_by_context(context.id)]


def _summary_run_id(stdout):
    return re.search(r"^  run +(\S+)$", stdout, re.MULTILINE).group(1)


def _wait_for(predicate, runner, what, timeout=900):
    deadline = time.monotonic() + timeout
    while not predicate():
        if runner.process.poll() is not None:
            pytest.fail(f"the runner ended (status {runner.process.returncode}) before {what}:\n"
                        + runner.err[-3000:])
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def killed_and_rerun(small_movielens, tmp_path_factory):
    """A home whose first runner was SIGKILLed while the Trainer trained, then run again."""
    home = tmp_path_factory.mktemp("killed_home")
    paths = configs.Paths(str(home))
    model_run = os.path.join(paths.pipeline_root, nodes.TRAINER_ID, "model_run")
    logs = tmp_path_factory.mktemp("killed_home_logs")
    killed = Runner(logs, small_movielens.out_dir, home)
    try:
        # The Trainer's TensorBoard log appears once fitting has begun.
        _wait_for(lambda: os.path.isdir(model_run) and any(
            os.listdir(os.path.join(model_run, d)) for d in os.listdir(model_run)),
            killed, "Trainer started fitting")
        os.kill(killed.pid, signal.SIGKILL)  # the runner alone, as the OOM killer would
        killed.process.wait(timeout=60)
    finally:
        killed.kill_group()
    store = _read_store(home)
    [trainer] = _node_executions(store, nodes.TRAINER_ID)
    zombie = {
        "pid": killed.pid,
        "run_id": json.loads(open(paths.lock_path).read())["run_id"],  # it never released it
        "trainer_id": trainer.id,
        "trainer_state": trainer.last_known_state,
        "folders": {key: os.listdir(os.path.join(paths.pipeline_root, nodes.TRAINER_ID, key,
                                                 str(trainer.id)))
                    for key in ("model", "model_run")},
        "lock": json.loads(open(paths.lock_path).read()),
    }
    code, out, err = Runner(logs, small_movielens.out_dir, home).finish()
    return {"home": str(home), "logs": logs, "zombie": zombie, "code": code, "out": out,
            "err": err}


@pytest.mark.slow
def test_runner_killed_in_the_trainer_is_marked_failed_cleaned_and_resumed(killed_and_rerun):
    home, zombie = killed_and_rerun["home"], killed_and_rerun["zombie"]
    paths = configs.Paths(home)
    # What the killed runner left: a RUNNING Trainer, an empty model, a partial model_run.
    assert zombie["trainer_state"] == mlmd_pb2.Execution.RUNNING
    assert zombie["folders"]["model"] == [] and zombie["folders"]["model_run"]
    assert zombie["lock"]["pid"] == zombie["pid"]

    code, out, err = (killed_and_rerun[k] for k in ("code", "out", "err"))
    assert code == 0, err[-3000:]
    assert f"pid {zombie['pid']}" in err and "ended without releasing it" in err
    # The clean-up's details go to the re-run's log (the terminal shows kiko's lines only).
    logs = sorted(os.listdir(paths.log_dir))
    with open(os.path.join(paths.log_dir, logs[-1])) as f:
        log = f.read()
    assert f"Execution {zombie['trainer_id']} (Trainer) of run {zombie['run_id']}" in log
    store = _read_store(home)
    trainers = _node_executions(store, nodes.TRAINER_ID)
    assert [x.last_known_state for x in trainers] == [mlmd_pb2.Execution.FAILED,
                                                      mlmd_pb2.Execution.COMPLETE]
    result = json.loads(trainers[0].custom_properties["__execution_result__"].string_value)
    assert result["resultMessage"].startswith(f"aborted: the runner of run {zombie['run_id']}")
    for key in ("model", "model_run"):
        kept = os.listdir(os.path.join(paths.pipeline_root, nodes.TRAINER_ID, key))
        assert kept == [str(trainers[1].id)], key
    assert _run_states(store, zombie["run_id"]).count("FAILED") == 1
    # The re-run resumed from the cache: every node before the Trainer was served from it.
    run_id = _summary_run_id(out)
    states = _run_states(store, run_id)
    # Trainer, Evaluator and Pusher ran; the resolvers resolved again.
    assert states.count("CACHED") == 5
    assert states.count("COMPLETE") == 3 + len(nodes.RESOLVER_IDS)
    assert _summary_run_id(out) == run_id
    assert re.search(r"^  status +COMPLETE", out, re.MULTILINE)
    assert "Exception ignored in" not in err  # no AtomicFunction.__del__ noise at worker exit
    assert open(paths.lock_path).read() == ""


@pytest.mark.slow
def test_runners_racing_for_one_home_never_share_it(killed_and_rerun, small_movielens):
    home, logs = killed_and_rerun["home"], killed_and_rerun["logs"]
    data = small_movielens.out_dir
    paths = configs.Paths(home)
    pushed_before = sorted(os.listdir(paths.serving_dir))
    first = Runner(logs, data, home)
    started = [first]
    try:
        _wait_for(lambda: os.path.getsize(paths.lock_path) > 0
                  and json.loads(open(paths.lock_path).read())["pid"] == first.pid,
                  first, "the first runner holding the lock", timeout=600)
        first_run = json.loads(open(paths.lock_path).read())["run_id"]
        refused = Runner(logs, data, home)
        waiting = Runner(logs, data, home, "--lock-wait", "900")
        started += [refused, waiting]
        code, out, err = refused.finish(timeout=600)
        assert code == environment.EXIT_BUSY, err[-3000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"kiko: home {home} is in use by run {first_run} "
                               f"(pid {first.pid} on ")
        assert out == ""
        first_code, first_out, first_err = first.finish()
        waiting_code, waiting_out, waiting_err = waiting.finish()
    finally:
        for runner in started:
            runner.kill_group()
    assert first_code == 0 and waiting_code == 0, (first_err + waiting_err)[-3000:]
    assert "waiting up to 900 s" in waiting_err and f"pid {first.pid}" in waiting_err
    waiting_run = _summary_run_id(waiting_out)
    # Each summary describes its own runner's run; both were served from the cache.
    assert _summary_run_id(first_out) == first_run
    assert _summary_run_id(waiting_out) == waiting_run != first_run
    store = _read_store(home)
    for run_id in (first_run, waiting_run):
        states = _run_states(store, run_id)
        # The resolvers resolve again (recorded COMPLETE); every other node came from cache.
        assert states.count("CACHED") == 8
        assert states.count("COMPLETE") == len(nodes.RESOLVER_IDS)
    assert sorted(os.listdir(paths.serving_dir)) == pushed_before


@pytest.mark.slow
def test_full_disk_during_a_run_is_one_line_naming_the_home(small_movielens, tmpfs, tmp_path):
    home = tmpfs(size="400k") / "home"
    runner = Runner(tmp_path, small_movielens.out_dir, home, "--validate-only")
    code, out, err = runner.finish(timeout=600)
    assert code == environment.EXIT_ENVIRONMENT, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"kiko: no space left on a device the run writes to: home {home} (")
    assert re.search(r"^  status +FAILED at ", out, re.MULTILINE)
