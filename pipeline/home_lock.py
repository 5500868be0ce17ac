"""One run per pipeline home: an exclusive `flock` on HOME/run.lock, held for a whole run.

The kernel drops the lock when the holder dies, however it dies, so a killed run never blocks
its home. The file records the holder (pid, host, start time, run id) so that a second runner
can name it, and so that the next holder can tell that the previous one never released it.

Homes are shared (NFS with Dask workers), so the lock file must not be a way to damage another
file. Policy:
- it is opened with O_NOFOLLOW and O_CLOEXEC (and O_NONBLOCK, so that a FIFO never blocks), and
  created with O_CREAT|O_EXCL when absent: a symlink, dangling or not, is never followed;
- it must be a regular file with one link, owned by the runner's (effective) user: checked on the
  path before opening and again with fstat on the open descriptor (the same file, not a swap);
- it is written only after the flock is held and the checks passed, and only when it is empty or
  holds a holder record (kiko's own): the record is rewritten in place (pwrite, then ftruncate to
  its length), so a file kiko did not write is never truncated;
- anything else (a symlink, a folder, a FIFO or device, another user's file, an immutable or
  append-only file, a file holding something else) is refused with an EnvironmentProblem whose
  one line names the lock file, says what is wrong and what to do.
"""

import datetime
import errno
import fcntl
import json
import os
import socket
import stat
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

from absl import logging

from kiko.pipeline.environment import EXIT_BUSY, EnvironmentProblem, write_problem

_OPEN_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_RECORD_MAX = 4096  # a holder record is far shorter; a larger file is not kiko's
_FS_IOC_GETFLAGS = 0x80086601  # linux/fs.h _IOR('f', 1, long)
_FS_IMMUTABLE_FL, _FS_APPEND_FL = 0x10, 0x20
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class HomeBusy(EnvironmentProblem):
    """Another runner holds the home's lock."""

    exit_code = EXIT_BUSY


class BadLockFile(EnvironmentProblem):
    """HOME/run.lock is not a file kiko may lock and write (see the module's policy)."""

    def __init__(self, path: str, what: str):
        super().__init__(
            f"lock file {path} {what}: kiko does not follow, empty or overwrite such a file; "
            "remove it or move it away (kiko creates its own), or pass another --home")


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
    """The record in an open lock file; None when empty (released) or not yet fully written.
    Only the first line counts: a longer earlier record may leave bytes after it until the
    writer's ftruncate."""
    line = os.pread(fd, _RECORD_MAX, 0).split(b"\n", 1)[0]
    if not line.strip():
        return None
    try:
        return Holder(**json.loads(line))
    except (ValueError, TypeError):
        return None


def _user(uid: int) -> str:
    try:
        import pwd  # pylint: disable=import-outside-toplevel  # POSIX only, like fcntl

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _unusable(path: str, status: os.stat_result) -> Optional[str]:
    """What makes the lock file with this (l)stat unusable, or None when kiko may lock it."""
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in _KINDS if test(status.st_mode)), "not a regular file")
        if stat.S_ISLNK(status.st_mode):
            try:
                kind += f" (to {os.readlink(path)})"
            except OSError:
                pass
        return f"is {kind}, not a regular file"
    if status.st_uid != os.geteuid():
        return (f"is owned by {_user(status.st_uid)}, not by the user running kiko, "
                f"{_user(os.geteuid())}")
    if status.st_nlink != 1:
        return f"has {status.st_nlink} hard links (the same file has another name)"
    return None


def _attribute_flags(path: str) -> int:
    """The file's chattr flags (FS_IOC_GETFLAGS), 0 where the file system cannot say."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, bytes(8))[:4])[0]
    except OSError:
        return 0
    finally:
        os.close(fd)


def _open_problem(path: str, error: OSError) -> EnvironmentProblem:
    """The refusal for an existing lock file that would not open for reading and writing."""
    if error.errno == errno.ELOOP:
        return BadLockFile(path, "is a symbolic link, not a regular file")
    if error.errno == errno.EISDIR:
        return BadLockFile(path, "is a folder, not a regular file")
    if error.errno in (errno.EPERM, errno.EACCES):
        flags = _attribute_flags(path)
        if flags & _FS_IMMUTABLE_FL:
            return BadLockFile(path, "is immutable (chattr +i; `chattr -i` clears it)")
        if flags & _FS_APPEND_FL:
            return BadLockFile(path, "is append-only (chattr +a; `chattr -a` clears it)")
        return BadLockFile(path, f"cannot be opened for writing ({error.strerror})")
    if error.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
        return EnvironmentProblem(write_problem(error, os.path.dirname(path)))
    return BadLockFile(path, f"cannot be opened ({error.strerror or error})")


def _open_lock(path: str) -> int:
    """A descriptor on the lock file, created by kiko if absent; never through a link, never
    on a file that is not a regular one of the runner's own."""
    for _ in range(3):  # another runner may create or remove the file between two calls
        try:
            return os.open(path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass  # also a symlink, dangling or not: O_EXCL never follows it
        except OSError as error:
            raise EnvironmentProblem(write_problem(error, os.path.dirname(path))) from error
        try:
            problem = _unusable(path, os.lstat(path))  # before opening: a FIFO or device
            if problem:                                # is never opened at all
                raise BadLockFile(path, problem)
            return os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise _open_problem(path, error) from error
    raise BadLockFile(path, "keeps appearing and disappearing (another process creates and "
                            "removes it)")


def _check_open(path: str, fd: int, record: bool) -> None:
    """The open file itself (fstat: not what the path names now) passes the policy; with
    `record` (once the lock is held, so no other runner is writing it), it is empty or holds a
    holder record, so that rewriting it destroys nothing kiko did not write."""
    status = os.fstat(fd)
    problem = _unusable(path, status)
    if problem:
        raise BadLockFile(path, problem)
    if record and (status.st_size > _RECORD_MAX or (
            _read_holder(fd) is None and os.pread(fd, status.st_size, 0).strip())):
        raise BadLockFile(path, "holds something other than a kiko holder record")


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
        fd = _open_lock(self.path)
        try:
            _check_open(self.path, fd, record=False)
            self._wait_for(fd)
            _check_open(self.path, fd, record=True)
            self.run_id = self.run_id or new_run_id()
            previous = _read_holder(fd)
            record = Holder(os.getpid(), socket.gethostname(),
                            datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                            self.run_id)
            data = json.dumps(asdict(record)).encode() + b"\n"
            os.pwrite(fd, data, 0)  # in place, then cut a longer earlier record's tail
            os.ftruncate(fd, len(data))
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
