"""One run per pipeline home, clean-up after a killed run, one-line messages for a bad environment.

A runner holds an exclusive `flock` on HOME/run.lock for its whole run. The kernel drops the lock
when the holder dies, however it dies, so a killed run never blocks its home; the file records
the holder (pid, host, start time, run id) so that a second runner can name it, and so that the
next holder can tell that the previous one never released it. While the lock is held no other
runner is alive in the home, so every execution ML Metadata still shows as NEW or RUNNING belongs
to a dead runner: it is marked FAILED (aborted) and its output folders are removed.
"""

import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

import contextlib
import datetime
import errno
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, List, Optional

from absl import logging

from pipeline import configs

# TFX and ML Metadata load TensorFlow (seconds): they are imported where needed, so that the
# runner's --help and its refusals stay instant.

# Exit statuses of the runner for problems of the machine or the paths (not of the data or
# the model): 2 like a usage error; 75 (sysexits' EX_TEMPFAIL) when another run holds the home.
EXIT_ENVIRONMENT = 2
EXIT_BUSY = 75

# MLMD context types TFX writes: the pipeline, each run (name = run id), each node
# (name = '<pipeline>.<node id>').
_PIPELINE_CONTEXT = "pipeline"
_RUN_CONTEXT = "pipeline_run"
_NODE_CONTEXT = "node"
_UNFINISHED = "last_known_state = NEW OR last_known_state = RUNNING"
# TFX's layout under a node's folder (tfx.orchestration.portable.outputs_utils, whose helpers
# create the folders they name): outputs in '<key>/<execution id>'; '.system' holds the
# executor's output and temp files per execution id, and stateful working dirs named by a
# fresh uuid per execution.
_SYSTEM_DIR = ".system"
_EXECUTOR_DIR = "executor_execution"
_STATEFUL_DIR = "stateful_working_dir"
# The Pusher's exec property naming its destination (a PushDestination as JSON).
_PUSH_DESTINATION = "push_destination"
_PUSHED_MODEL = "PushedModel"


class EnvironmentProblem(Exception):
    """The machine or a path stops the run (not the data or the model): one line that names the
    path and says what to do."""

    exit_code = EXIT_ENVIRONMENT


class HomeBusy(EnvironmentProblem):
    """Another runner holds the home's lock."""

    exit_code = EXIT_BUSY


# ---------------------------------------------------------------------------------------------
# Paths.


def _write_problem(error: OSError, path: str) -> str:
    """One line for a failed write under `path`: why, and what to do."""
    reason = error.strerror or str(error)
    if error.errno == errno.EROFS:
        return (f"{path} is on a read-only file system: pass a writable --home "
                f"(or ${configs.HOME_ENV}), or remount it read-write")
    if error.errno in (errno.EACCES, errno.EPERM):
        return (f"no permission to write in {path} ({reason}): pass a --home you can write to "
                f"(or ${configs.HOME_ENV}), or fix its permissions")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return _no_space(path)
    return f"cannot write in {path} ({reason}): pass another --home (or ${configs.HOME_ENV})"


def _free_mib(path: str) -> str:
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        return f"{shutil.disk_usage(path).free / 2**20:.1f} MiB free now"
    except OSError:
        return "free space unknown"


def _no_space(path: str) -> str:
    return (f"no space left on the device holding {path} ({_free_mib(path)}): free some space "
            "or pass a --home on a larger disk; a re-run resumes from the cache")


def _no_space_somewhere(home: str) -> str:
    """For an error that arrived as text (a Beam worker's, SQLite's), which names no path."""
    temp = tempfile.gettempdir()
    return (f"no space left on a device the run writes to: home {home} ({_free_mib(home)}), "
            f"temp folder {temp} ({_free_mib(temp)}): free some space or pass a --home on a "
            "larger disk; a re-run resumes from the cache")


def prepare_home(home: str) -> None:
    """Creates the home folder (not its parents: a mistyped path should not grow a tree), or
    raises EnvironmentProblem. Creating the lock file (HomeLock) is the test that it is
    writable: root passes permission checks, but not a read-only file system."""
    if os.path.exists(home) and not os.path.isdir(home):
        raise EnvironmentProblem(
            f"home {home} is a file, not a folder: pass --home (or ${configs.HOME_ENV}) a "
            "folder path, or move the file away")
    if not os.path.isdir(home):
        parent = os.path.dirname(home)
        if not os.path.isdir(parent):
            raise EnvironmentProblem(
                f"cannot create home {home}: its parent {parent} is not an existing folder; "
                f"create it (mkdir -p {parent}) or pass another --home")
        try:
            os.mkdir(home)
        except OSError as error:
            raise EnvironmentProblem(_write_problem(error, home)) from error


def check_data(path: str, source: str) -> None:
    """A given input path must exist (the readers say what is wrong inside it)."""
    if path and not os.path.exists(path):
        raise EnvironmentProblem(
            f"{source} {os.path.abspath(path)}: no such file or folder; give ml-1m.zip, a folder "
            "holding ratings.dat, or a ratings file (`kiko download --dest DIR` fetches "
            "MovieLens-1M), or leave it out for the embedded generated data")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


# Errors from Beam workers and SQLite reach the runner as text only.
_NO_SPACE_TEXT = ("No space left on device", "database or disk is full", "Disk quota exceeded")
_READ_ONLY_TEXT = ("Read-only file system", "attempt to write a readonly database")


def describe_failure(error: BaseException, home: str) -> Optional[str]:
    """One line for a run stopped by the machine (full disk, read-only home), else None."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return _write_problem(link, link.filename or home)
    text = "\n".join(str(link) for link in _chain(error))
    if any(marker in text for marker in _NO_SPACE_TEXT):
        return _no_space_somewhere(home)
    if any(marker in text for marker in _READ_ONLY_TEXT):
        return (f"cannot write under home {home} (a read-only file system or read-only files): "
                f"pass a writable --home (or ${configs.HOME_ENV}), or fix its permissions")
    return None


# ---------------------------------------------------------------------------------------------
# The lock.


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a home's lock."""

    pid: int
    host: str
    started: str
    run_id: str

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host}, started {self.started})"

    def gone(self) -> bool:
        """The holder's process has ended (known only on its own host)."""
        return self.host == socket.gethostname() and not _pid_alive(self.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(fd: int) -> Optional[Holder]:
    """The record in an open lock file; None when empty (released) or not yet fully written."""
    text = os.pread(fd, 4096, 0)
    if not text.strip():
        return None
    try:
        return Holder(**json.loads(text))
    except (ValueError, TypeError):
        return None


def new_run_id() -> str:
    """A run id in LocalDagRunner's own format (local time, ISO 8601)."""
    return datetime.datetime.now().isoformat()


@dataclass
class HomeLock:
    """An exclusive flock on the home's lock file, held for a whole run.

    `acquire` waits up to `wait_s` seconds for another holder (0: refuse at once) and returns
    the previous holder's record when that one never released the lock (it was killed).
    """

    path: str
    run_id: str = ""  # default: a new one, made once the lock is held
    wait_s: float = 0.0
    poll_s: float = 0.5
    _fd: Optional[int] = field(default=None, repr=False)

    def acquire(self) -> Optional[Holder]:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise EnvironmentProblem(_write_problem(error, os.path.dirname(self.path))) from error
        try:
            self._wait_for(fd)
            self.run_id = self.run_id or new_run_id()
            previous = _read_holder(fd)
            record = Holder(os.getpid(), socket.gethostname(),
                            datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                            self.run_id)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(asdict(record)).encode() + b"\n", 0)
            os.fsync(fd)
        except OSError as error:
            os.close(fd)
            raise EnvironmentProblem(_write_problem(error, self.path)) from error
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        logging.info("Run %s holds %s (pid %d).", self.run_id, self.path, os.getpid())
        if previous is not None:
            logging.warning("Took over %s: %s ended without releasing it (killed or crashed).",
                            self.path, previous.describe())
        return previous

    def _wait_for(self, fd: int) -> None:
        deadline = time.monotonic() + self.wait_s
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if announced:
                    logging.warning("The other run has finished; this run starts now.")
                return
            except BlockingIOError:
                pass
            holder = _read_holder(fd)
            who = holder.describe() if holder else "another run (its record is being written)"
            if holder is not None and holder.gone():
                who += f", whose pid {holder.pid} has ended but a process it started holds the lock"
            home = os.path.dirname(self.path)
            if time.monotonic() >= deadline:
                waited = f" after waiting {self.wait_s:g} s" if self.wait_s > 0 else ""
                raise HomeBusy(
                    f"home {home} is in use by {who}{waited}: let it finish (--lock-wait "
                    "SECONDS waits for it) or pass another --home")
            if not announced:
                logging.warning("Home %s is in use by %s; waiting up to %g s for it to finish "
                                "(--lock-wait).", home, who, self.wait_s)
                announced = True
            time.sleep(max(0.0, min(self.poll_s, deadline - time.monotonic())))

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # an empty record: released, not killed
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# ---------------------------------------------------------------------------------------------
# Runs left behind by a dead runner.


@dataclass
class Interrupted:
    """An execution a dead runner left unfinished, now marked FAILED; what was removed."""

    execution_id: int
    node_id: str
    run_id: str
    removed: List[str]


def _remove(path: str, removed: List[str]) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
    else:
        return
    removed.append(path)


def _orphaned_outputs(pipeline_root: str, node_id: str, execution_id: int) -> List[str]:
    """The folders TFX made for one execution: every output `<node>/<key>/<id>` and the
    executor's `.system/executor_execution/<id>` (its output file and temp dir)."""
    node_dir = os.path.join(pipeline_root, node_id)
    if not os.path.isdir(node_dir):
        return []
    paths = [os.path.join(node_dir, key, str(execution_id))
             for key in sorted(os.listdir(node_dir)) if key != _SYSTEM_DIR]
    paths.append(os.path.join(node_dir, _SYSTEM_DIR, _EXECUTOR_DIR, str(execution_id)))
    # The local launcher never records a stateful working dir's uuid, so a dead execution's
    # can be neither found by id nor reused: under the lock every one of the node's is stale.
    stateful = os.path.join(node_dir, _SYSTEM_DIR, _STATEFUL_DIR)
    if os.path.isdir(stateful):
        paths += [os.path.join(stateful, name) for name in sorted(os.listdir(stateful))]
    return paths


def _orphaned_pushes(store, execution) -> List[str]:
    """Serving versions a killed Pusher wrote but never recorded: the Pusher names a version by
    the Unix time of its push, so these are the unrecorded ones from its start on."""
    value = execution.custom_properties.get(_PUSH_DESTINATION)
    if value is None:
        return []
    base = json.loads(value.string_value).get("filesystem", {}).get("baseDirectory")
    if not base or not os.path.isdir(base):
        return []
    recorded = set()
    if _PUSHED_MODEL in {t.name for t in store.get_artifact_types()}:
        recorded = {os.path.normpath(a.custom_properties["pushed_destination"].string_value)
                    for a in store.get_artifacts_by_type(_PUSHED_MODEL)
                    if "pushed_destination" in a.custom_properties}
    started_s = execution.create_time_since_epoch // 1000
    return [os.path.join(base, name) for name in sorted(os.listdir(base))
            if name.isdigit() and int(name) >= started_s
            and os.path.normpath(os.path.join(base, name)) not in recorded]


def recover_interrupted_runs(metadata_path: str, pipeline_root: str,
                             previous: Optional[Holder] = None) -> List[Interrupted]:
    """Marks every execution left NEW or RUNNING FAILED (aborted) and removes its output folders.

    Call only while holding the home's lock: then no live runner owns those executions. The
    re-run is unaffected otherwise: completed executions stay in the cache.
    """
    if not os.path.isfile(metadata_path):
        return []
    from google.rpc import code_pb2
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
    from tfx import v1 as tfx

    from components import _tfx_internal as tfx_internal

    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    found: List[Interrupted] = []
    with tfx_internal.Metadata(config) as handle:
        store = handle.store
        context_types = {t.id: t.name for t in store.get_context_types()}
        unfinished = store.get_executions(
            list_options=metadata_store.ListOptions(filter_query=_UNFINISHED))
        for execution in sorted(unfinished, key=lambda x: x.id):
            contexts = store.get_contexts_by_execution(execution.id)
            names = {}
            for context in contexts:
                names.setdefault(context_types.get(context.type_id), context.name)
            pipeline = names.get(_PIPELINE_CONTEXT, "")
            node_context = names.get(_NODE_CONTEXT, "?")
            node_id = (node_context[len(pipeline) + 1:]
                       if pipeline and node_context.startswith(pipeline + ".") else node_context)
            run_id = names.get(_RUN_CONTEXT, "?")
            runner = (f" ({previous.describe()})"
                      if previous is not None and previous.run_id == run_id else "")
            message = (f"aborted: the runner of run {run_id}{runner} stopped while {node_id} "
                       f"was {mlmd_pb2.Execution.State.Name(execution.last_known_state)} "
                       f"(killed or crashed); marked failed by pid {os.getpid()} at "
                       f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
            output = tfx_internal.ExecutorOutput()
            output.execution_result.code = code_pb2.ABORTED
            output.execution_result.result_message = message
            tfx_internal.publish_failed_execution(handle, contexts, execution.id, output)
            removed: List[str] = []
            for path in (_orphaned_outputs(pipeline_root, node_id, execution.id)
                         + _orphaned_pushes(store, execution)):
                _remove(path, removed)
            logging.warning("Execution %d (%s) of run %s was left %s by a runner that is gone: "
                            "marked FAILED; removed %s.", execution.id, node_id, run_id,
                            mlmd_pb2.Execution.State.Name(execution.last_known_state),
                            ", ".join(removed) or "no folders")
            found.append(Interrupted(execution.id, node_id, run_id, removed))
    return found


@contextlib.contextmanager
def guarded_home(paths: configs.Paths, wait_s: float = 0.0) -> Iterator[str]:
    """Prepares the home, holds its lock and cleans up after killed runs; yields the run id the
    runner must run under (`local_dag_runner`)."""
    prepare_home(paths.home)
    lock = HomeLock(paths.lock_path, wait_s=wait_s)
    previous = lock.acquire()
    try:
        recover_interrupted_runs(paths.metadata_path, paths.pipeline_root, previous)
        yield lock.run_id
    finally:
        lock.release()


# ---------------------------------------------------------------------------------------------
# The runner's own run.


def local_dag_runner(run_id: str):
    """TFX's LocalDagRunner under the run id `run_id`, so the runner can name its own run.

    TFX's own picks `datetime.now().isoformat()` inside `run_with_ir` and never returns it.
    `run` stays TFX's, so the tfx CLI's compile-only patch of it keeps working; `started`
    tells whether a run actually began (the CLI's `pipeline create` only compiles).
    """
    from tfx import v1 as tfx

    from components import _tfx_internal as tfx_internal

    class OwnRunIdLocalDagRunner(tfx.orchestration.LocalDagRunner):
        def __init__(self):
            super().__init__()
            self.run_id = run_id
            self.started = False

        def run_with_ir(self, pipeline, run_options=None):
            # Once substituted, TFX's own substitution finds no run-id parameter left.
            tfx_internal.substitute_runtime_parameter(
                pipeline, {tfx_internal.PIPELINE_RUN_ID_PARAMETER_NAME: self.run_id})
            self.started = True
            return super().run_with_ir(pipeline, run_options=run_options)

    return OwnRunIdLocalDagRunner()
