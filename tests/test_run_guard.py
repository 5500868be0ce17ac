"""One run per home, clean-up after killed runs, one-line environment messages (pipeline.run_guard).

Fast tests use real locks held by real subprocesses, a real ML Metadata store and real
file systems (tmpfs mounts for read-only and full disks: CI runs as root). The slow tests at the
end kill and race real runner processes.
"""

import kiko_model  # noqa: F401  (must stay the first import)

import errno
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from kiko_model import features as fk
from pipeline import configs
from pipeline import local_runner
from pipeline import run_guard
from tests.conftest import FAST_HPARAMS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# Helpers: a lock held by another process, tmpfs mounts, the runner's one-line errors.

_HOLDER = textwrap.dedent("""
    import sys
    from pipeline.run_guard import HomeLock
    lock = HomeLock(sys.argv[1], run_id="holder-run")
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.read()  # holds the lock until the test closes stdin
    lock.release()
""")


class LockHolder:
    """A separate process holding a home lock until `release()` (or until it is killed)."""

    def __init__(self, path):
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path)], cwd=REPO, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "locked"

    @property
    def pid(self):
        return self.process.pid

    def release(self):
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=60)

    def close(self):
        if self.process.poll() is None:
            self.kill()


@pytest.fixture()
def holders():
    started = []

    def start(path):
        started.append(LockHolder(path))
        return started[-1]

    yield start
    for holder in started:
        holder.close()


def _mount_tmpfs(path, size):
    """Mounts a tmpfs of `size` at `path`; fails (never skips) where this machine cannot."""
    os.makedirs(path, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"this test needs to mount a tmpfs at {path} (root with CAP_SYS_ADMIN, as "
                    f"in CI) to simulate a read-only or full disk: {result.stderr.strip()}")


@pytest.fixture()
def tmpfs(tmp_path):
    """mount(size, read_only=False, prepare=None) -> a fresh tmpfs folder, unmounted afterwards;
    `prepare(folder)` runs before a read-only remount."""
    mounted = []

    def mount(size="1m", read_only=False, prepare=None):
        path = tmp_path / f"tmpfs{len(mounted)}"
        _mount_tmpfs(path, size)
        mounted.append(path)
        if prepare is not None:
            prepare(path)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", str(path)], check=True)


def _run_main(capsys, *argv):
    """local_runner.main in this process; (exit status, stderr lines)."""
    code = local_runner.main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


# ---------------------------------------------------------------------------------------------
# The lock.


def test_second_runner_is_refused_with_the_holders_pid_and_run(tmp_path, holders):
    path = tmp_path / "run.lock"
    holder = holders(path)
    with pytest.raises(run_guard.HomeBusy) as refused:
        run_guard.HomeLock(str(path)).acquire()
    message = str(refused.value)
    assert f"pid {holder.pid}" in message and "run holder-run" in message
    assert str(tmp_path) in message and "--lock-wait" in message
    assert refused.value.exit_code == run_guard.EXIT_BUSY
    record = json.loads(path.read_text())
    assert record["pid"] == holder.pid and record["run_id"] == "holder-run"


def test_waiting_runner_starts_when_the_holder_finishes(tmp_path, holders):
    path = tmp_path / "run.lock"
    holder = holders(path)
    lock = run_guard.HomeLock(str(path), wait_s=120, poll_s=0.1)
    releaser = threading.Timer(1.0, holder.release)
    start = time.monotonic()
    releaser.start()
    try:
        previous = lock.acquire()
    finally:
        releaser.join()
    try:
        assert previous is None  # released cleanly: nothing to take over
        assert 1.0 <= time.monotonic() - start < 60
        assert json.loads(path.read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    assert path.read_text() == ""  # released: an empty record


def test_waiting_runner_gives_up_after_lock_wait(tmp_path, holders):
    path = tmp_path / "run.lock"
    holders(path)
    start = time.monotonic()
    with pytest.raises(run_guard.HomeBusy, match="after waiting 1 s"):
        run_guard.HomeLock(str(path), wait_s=1, poll_s=0.1).acquire()
    assert 1 <= time.monotonic() - start < 30


def test_lock_of_a_killed_runner_is_taken_over_and_named(tmp_path, holders, caplog):
    path = tmp_path / "run.lock"
    holder = holders(path)
    holder.kill()
    lock = run_guard.HomeLock(str(path), run_id="next-run")
    with caplog.at_level("WARNING"):
        previous = lock.acquire()
    try:
        assert previous.pid == holder.pid and previous.run_id == "holder-run"
        assert f"pid {holder.pid}" in caplog.text and "ended without releasing" in caplog.text
        assert json.loads(path.read_text())["run_id"] == "next-run"
    finally:
        lock.release()


# ---------------------------------------------------------------------------------------------
# The environment: one line naming the path and what to do.


def test_home_that_is_a_file_is_refused(tmp_path, capsys):
    home = tmp_path / "home"
    home.write_text("not a folder")
    code, err = _run_main(capsys, "--home", str(home))
    assert code == run_guard.EXIT_ENVIRONMENT
    assert len(err) == 1 and str(home) in err[0] and "is a file" in err[0]


def test_home_whose_parent_is_missing_is_refused(tmp_path, capsys):
    home = tmp_path / "missing" / "home"
    code, err = _run_main(capsys, "--home", str(home))
    assert code == run_guard.EXIT_ENVIRONMENT
    assert len(err) == 1 and f"mkdir -p {tmp_path / 'missing'}" in err[0]
    assert not (tmp_path / "missing").exists()


def test_missing_data_path_is_named(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nowhere" / "ml-1m.zip"
    code, err = _run_main(capsys, "--home", str(tmp_path / "home"), "--data", str(missing))
    assert code == run_guard.EXIT_ENVIRONMENT
    assert len(err) == 1 and err[0].startswith(f"kiko: --data {missing}: no such file")
    monkeypatch.setenv(configs.DATA_ENV, str(missing))
    code, err = _run_main(capsys, "--home", str(tmp_path / "home"))
    assert code == run_guard.EXIT_ENVIRONMENT and f"${configs.DATA_ENV} {missing}" in err[0]


def _earlier_home(path):
    (path / "home").mkdir()
    (path / "home" / "metadata.sqlite").write_bytes(b"")  # as a previous run leaves it


def test_read_only_home_is_named_before_anything_runs(tmpfs, capsys):
    home = tmpfs(read_only=True, prepare=_earlier_home) / "home"
    code, err = _run_main(capsys, "--home", str(home))
    assert code == run_guard.EXIT_ENVIRONMENT
    assert len(err) == 1 and str(home) in err[0] and "read-only file system" in err[0]
    assert "--home" in err[0]


def test_read_only_mount_as_home_cannot_be_created(tmpfs, capsys):
    home = tmpfs(read_only=True) / "home"
    code, err = _run_main(capsys, "--home", str(home))
    assert code == run_guard.EXIT_ENVIRONMENT
    assert len(err) == 1 and str(home) in err[0] and "read-only" in err[0]


def test_full_disk_is_described_with_the_home(tmpfs):
    home = tmpfs(size="64k")
    with pytest.raises(OSError) as full:
        with open(home / "filler", "wb") as f:
            for _ in range(100):
                f.write(b"\0" * 4096)
                f.flush()
    assert full.value.errno == errno.ENOSPC
    # As an OSError in this process (a failed write names no file: the home); as text from a
    # Beam worker or SQLite: the home and the temp folder, where the run writes.
    message = run_guard.describe_failure(full.value, str(home))
    assert message.startswith(f"no space left on the device holding {home} (0.0 MiB free now)")
    assert "MiB free now" in message and "--home" in message
    for error in (RuntimeError("OSError: [Errno 28] No space left on device [while running "
                               "'WriteSplit[train]/Write/Write/WriteImpl/WriteBundles']"),
                  RuntimeError("Cannot commit: database or disk is full")):
        message = run_guard.describe_failure(error, str(home))
        assert message.startswith(f"no space left on a device the run writes to: home {home} (")
        assert f"temp folder {tempfile.gettempdir()}" in message and "--home" in message
    assert run_guard.describe_failure(ValueError("no examples"), str(home)) is None


# ---------------------------------------------------------------------------------------------
# Runs left by a dead runner.


def _context(store, type_id, name):
    [context_id] = store.put_contexts([mlmd_pb2.Context(type_id=type_id, name=name)])
    return mlmd_pb2.Context(id=context_id, type_id=type_id, name=name)


def _execution(store, type_name, state, contexts, **custom):
    type_id = store.put_execution_type(mlmd_pb2.ExecutionType(name=type_name))
    execution = mlmd_pb2.Execution(type_id=type_id, last_known_state=state)
    for key, value in custom.items():
        execution.custom_properties[key].string_value = value
    execution_id, _, _ = store.put_execution(execution, [], contexts)
    return execution_id


def test_unfinished_executions_are_failed_and_their_folders_removed(tmp_path):
    """A store as a runner killed in the Trainer and one killed in the Pusher leave it."""
    metadata_path = str(tmp_path / "metadata.sqlite")
    root = tmp_path / "pipeline_root"
    serving = tmp_path / "serving_model"
    config = mlmd_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(config)
    types = {name: store.put_context_type(mlmd_pb2.ContextType(name=name))
             for name in ("pipeline", "pipeline_run", "node")}
    pipeline = _context(store, types["pipeline"], "kiko")
    run = _context(store, types["pipeline_run"], "run-killed")

    def node(node_id):
        return [pipeline, run, _context(store, types["node"], f"kiko.{node_id}")]

    done = _execution(store, "ExampleGen", mlmd_pb2.Execution.COMPLETE,
                      node(fk.EXAMPLE_GEN_ID))
    trainer = _execution(store, "Trainer", mlmd_pb2.Execution.RUNNING, node(fk.TRAINER_ID))
    destination = json.dumps({"filesystem": {"baseDirectory": str(serving)}})
    pusher = _execution(store, "Pusher", mlmd_pb2.Execution.NEW, node(fk.PUSHER_ID),
                        push_destination=destination)
    # A push recorded in ML Metadata, and a version folder someone put there long ago.
    pushed_type = store.put_artifact_type(mlmd_pb2.ArtifactType(name="PushedModel"))
    recorded = mlmd_pb2.Artifact(type_id=pushed_type)
    recorded.custom_properties["pushed_destination"].string_value = str(serving / "1000000000")
    store.put_artifacts([recorded])
    orphan_version = str(int(time.time()) + 1)

    keep = [root / fk.EXAMPLE_GEN_ID / "examples" / str(done) / "Split-train",
            root / fk.TRAINER_ID / "model" / "99",
            serving / "1000000000", serving / "1000000001"]
    gone = [root / fk.TRAINER_ID / "model" / str(trainer),
            root / fk.TRAINER_ID / "model_run" / str(trainer),
            root / fk.TRAINER_ID / ".system" / "executor_execution" / str(trainer),
            root / fk.TRAINER_ID / ".system" / "stateful_working_dir" / "0b5e-uuid",
            root / fk.PUSHER_ID / "pushed_model" / str(pusher),
            serving / orphan_version]
    for path in keep + gone:
        path.mkdir(parents=True)
        (path / "data").write_text("x")
    del store

    previous = run_guard.Holder(pid=4242, host="elsewhere", started="then", run_id="run-killed")
    found = run_guard.recover_interrupted_runs(metadata_path, str(root), previous)

    assert [(x.execution_id, x.node_id, x.run_id) for x in found] == [
        (trainer, fk.TRAINER_ID, "run-killed"), (pusher, fk.PUSHER_ID, "run-killed")]
    assert sorted(p for x in found for p in x.removed) == sorted(str(p) for p in gone)
    for path in gone:
        assert not path.exists(), path
    for path in keep:
        assert (path / "data").exists(), path
    store = metadata_store.MetadataStore(config)
    states = {x.id: x.last_known_state for x in store.get_executions()}
    assert states == {done: mlmd_pb2.Execution.COMPLETE, trainer: mlmd_pb2.Execution.FAILED,
                      pusher: mlmd_pb2.Execution.FAILED}
    [failed] = store.get_executions_by_id([trainer])
    result = json.loads(failed.custom_properties["__execution_result__"].string_value)
    assert result["resultMessage"].startswith("aborted: the runner of run run-killed (")
    assert "pid 4242 on elsewhere" in result["resultMessage"]
    # Nothing is left to recover.
    assert run_guard.recover_interrupted_runs(metadata_path, str(root)) == []


def test_runner_uses_the_run_id_it_was_given(tmp_path, capsys):
    """The runner's run id is the pipeline_run context TFX records and the run its summary
    describes; a compile-only run (the tfx CLI's `pipeline create`) does not start."""
    from tfx import v1 as tfx
    from tfx.tools.cli.handler import local_dag_runner_patcher

    metadata_path = str(tmp_path / "metadata.sqlite")
    schema_gen = tfx.components.ImportSchemaGen(
        schema_file=configs.schema_path(True, True)).with_id(fk.SCHEMA_GEN_ID)
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="kiko_test", pipeline_root=str(tmp_path / "root"),
        components=[schema_gen],
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)))

    compiling = run_guard.local_dag_runner("never-runs")
    with local_dag_runner_patcher.LocalDagRunnerPatcher().patch():
        compiling.run(pipeline)
    assert not compiling.started and not os.path.exists(metadata_path)

    runner = run_guard.local_dag_runner("run-under-test")
    runner.run(pipeline)
    assert runner.started
    from pipeline import metadata_reader
    store = metadata_reader.open_store(metadata_path)
    assert metadata_reader.run_summary(store, "run-under-test")["run_id"] == "run-under-test"
    assert metadata_reader.run_summary(store)["run_id"] == "run-under-test"


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


def _own_run_id(stderr):
    return re.search(r"Run (\S+) holds ", stderr).group(1)


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
    model_run = os.path.join(paths.pipeline_root, fk.TRAINER_ID, "model_run")
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
    [trainer] = _node_executions(store, fk.TRAINER_ID)
    zombie = {
        "pid": killed.pid,
        "run_id": _own_run_id(killed.err),
        "trainer_id": trainer.id,
        "trainer_state": trainer.last_known_state,
        "folders": {key: os.listdir(os.path.join(paths.pipeline_root, fk.TRAINER_ID, key,
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
    assert f"Execution {zombie['trainer_id']} (Trainer) of run {zombie['run_id']}" in err
    store = _read_store(home)
    trainers = _node_executions(store, fk.TRAINER_ID)
    assert [x.last_known_state for x in trainers] == [mlmd_pb2.Execution.FAILED,
                                                      mlmd_pb2.Execution.COMPLETE]
    result = json.loads(trainers[0].custom_properties["__execution_result__"].string_value)
    assert result["resultMessage"].startswith(f"aborted: the runner of run {zombie['run_id']}")
    for key in ("model", "model_run"):
        kept = os.listdir(os.path.join(paths.pipeline_root, fk.TRAINER_ID, key))
        assert kept == [str(trainers[1].id)], key
    assert _run_states(store, zombie["run_id"]).count("FAILED") == 1
    # The re-run resumed from the cache: every node before the Trainer was served from it.
    run_id = _own_run_id(err)
    states = _run_states(store, run_id)
    assert states.count("CACHED") == 5 and states.count("COMPLETE") == 4
    assert _summary_run_id(out) == run_id and "status         COMPLETE" in out
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
        assert code == run_guard.EXIT_BUSY, err[-3000:]
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
    waiting_run = _own_run_id(waiting_err)
    # Each summary describes its own runner's run; both were served from the cache.
    assert _summary_run_id(first_out) == first_run
    assert _summary_run_id(waiting_out) == waiting_run != first_run
    store = _read_store(home)
    for run_id in (first_run, waiting_run):
        states = _run_states(store, run_id)
        assert states.count("CACHED") == 8 and states.count("COMPLETE") == 1  # the resolver
    assert sorted(os.listdir(paths.serving_dir)) == pushed_before


@pytest.mark.slow
def test_full_disk_during_a_run_is_one_line_naming_the_home(small_movielens, tmpfs, tmp_path):
    home = tmpfs(size="400k") / "home"
    runner = Runner(tmp_path, small_movielens.out_dir, home, "--validate-only")
    code, out, err = runner.finish(timeout=600)
    assert code == run_guard.EXIT_ENVIRONMENT, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"kiko: no space left on a device the run writes to: home {home} (")
    assert "status         FAILED at " in out
