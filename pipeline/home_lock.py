"""One run per pipeline home: an exclusive `flock` on HOME/run.lock, held for a whole run.

The kernel drops the lock when the holder dies, however it dies, so a killed run never blocks
its home. The file records the holder (pid, host, start time, run id) so that a second runner
can name it, and so that the next holder can tell that the previous one never released it.
"""

import datetime
import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

from absl import logging

from kiko.pipeline.environment import EXIT_BUSY, EnvironmentProblem, write_problem


class HomeBusy(EnvironmentProblem):
    """Another runner holds the home's lock."""

    exit_code = EXIT_BUSY


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
            raise EnvironmentProblem(write_problem(error, os.path.dirname(self.path))) from error
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
            raise EnvironmentProblem(write_problem(error, self.path)) from error
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
