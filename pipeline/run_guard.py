"""The local runner's guard around a run: a usable home, one run in it at a time, the clean-up
after a run that was killed there (environment, home_lock and recovery do each job), and a stop
on SIGINT/SIGTERM that the runner can wind down from."""

import contextlib
import os
import signal
from typing import Callable, Iterator, List, Optional, Tuple

from kiko.pipeline import configs
from kiko.pipeline.environment import prepare_home
from kiko.pipeline.home_lock import HomeLock, Holder
from kiko.pipeline.recovery import recover_interrupted_runs

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _locked(paths: configs.Paths, wait_s: float) -> Iterator[Tuple[str, Optional[Holder]]]:
    prepare_home(paths.home)
    lock = HomeLock(paths.lock_path, wait_s=wait_s)
    previous = lock.acquire()
    try:
        yield lock.run_id, previous
    finally:
        lock.release()


@contextlib.contextmanager
def guarded_home(paths: configs.Paths, wait_s: float = 0.0) -> Iterator[str]:
    """Prepares the home, holds its lock (waiting up to `wait_s` seconds for another run) and
    cleans up after killed runs; yields the run id the runner must run under
    (dag_runner.OwnRunIdLocalDagRunner)."""
    with _locked(paths, wait_s) as (run_id, previous):
        recover_interrupted_runs(paths.metadata_path, paths.pipeline_root, previous)
        yield run_id


@contextlib.contextmanager
def guarded_story(paths: configs.Paths, wait_s: float, story: Callable) -> Iterator[tuple]:
    """guarded_home for a run told by `story(home)` (run_console.story): the story begins once
    the lock is held and before the clean-up, which loads TFX, so that the libraries' output
    goes to the run's log; yields the run id and what the story yields."""
    with _locked(paths, wait_s) as (run_id, previous), story(paths.home) as told:
        recover_interrupted_runs(paths.metadata_path, paths.pipeline_root, previous)
        yield run_id, told


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; the exit status a shell expects is 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


class Stop:
    """What stop_on_signals saw: the signal (None so far) and what to call when one arrives."""

    def __init__(self):
        self.signum: Optional[int] = None
        self.on_signal: Callable[[], None] = lambda: None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """Within the block SIGINT and SIGTERM raise Interrupted in the main thread, once: later
    ones are ignored until the block ends, so that the runner can wind down undisturbed."""
    stop = Stop()

    def interrupt(signum, _frame):
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_IGN)
        stop.signum = signum
        stop.on_signal()
        raise Interrupted(signum)

    previous = [(each, signal.signal(each, interrupt)) for each in STOP_SIGNALS]
    try:
        yield stop
    finally:
        for each, handler in previous:
            signal.signal(each, handler)


def _children(pid: int) -> List[int]:
    """The processes `pid` started, and theirs (Linux /proc; none elsewhere)."""
    found: List[int] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                # "pid (command) state ppid ...": the command may hold spaces and parentheses.
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found += [int(name)] + _children(int(name))
    return found


def stop_workers() -> List[int]:
    """Ends the processes this runner started (Beam workers) with SIGTERM; returns their ids."""
    stopped = []
    for pid in _children(os.getpid()):
        try:
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
        except OSError:
            pass
    return stopped
