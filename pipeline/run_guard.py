"""The local runner's guard around a run: a usable home, one run in it at a time, and the
clean-up after a run that was killed there (environment, home_lock and recovery do each job)."""

import contextlib
from typing import Iterator

from kiko.pipeline import configs
from kiko.pipeline.environment import prepare_home
from kiko.pipeline.home_lock import HomeLock
from kiko.pipeline.recovery import recover_interrupted_runs


@contextlib.contextmanager
def guarded_home(paths: configs.Paths, wait_s: float = 0.0) -> Iterator[str]:
    """Prepares the home, holds its lock (waiting up to `wait_s` seconds for another run) and
    cleans up after killed runs; yields the run id the runner must run under
    (dag_runner.OwnRunIdLocalDagRunner)."""
    prepare_home(paths.home)
    lock = HomeLock(paths.lock_path, wait_s=wait_s)
    previous = lock.acquire()
    try:
        recover_interrupted_runs(paths.metadata_path, paths.pipeline_root, previous)
        yield lock.run_id
    finally:
        lock.release()
