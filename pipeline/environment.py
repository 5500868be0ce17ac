"""One-line messages for a run the machine or a path stops: a full disk, a read-only home, a home
that cannot be created, input data that is not there. Each names the path and says what to do.
"""

import errno
import os
import shlex
import shutil
import tempfile
from typing import Iterator, Optional

from kiko.data.movielens import spans
from kiko.pipeline import configs

# Exit statuses of the runner for problems of the machine or the paths (not of the data or
# the model): 2 like a usage error; 75 (sysexits' EX_TEMPFAIL) when another run holds the home.
EXIT_ENVIRONMENT = 2
EXIT_BUSY = 75

# Errors from Beam workers and SQLite reach the runner as text only.
_NO_SPACE_TEXT = ("No space left on device", "database or disk is full", "Disk quota exceeded")
_READ_ONLY_TEXT = ("Read-only file system", "attempt to write a readonly database")


class EnvironmentProblem(Exception):
    """The machine or a path stops the run (not the data or the model): one line that names the
    path and says what to do."""

    exit_code = EXIT_ENVIRONMENT


def write_problem(error: OSError, path: str) -> str:
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
    raises EnvironmentProblem. Creating the lock file (home_lock.HomeLock) is the test that it
    is writable: root passes permission checks, but not a read-only file system."""
    if os.path.exists(home) and not os.path.isdir(home):
        raise EnvironmentProblem(
            f"home {home} is a file, not a folder: pass --home (or ${configs.HOME_ENV}) a "
            "folder path, or move the file away")
    if not os.path.isdir(home):
        parent = os.path.dirname(home)
        if not os.path.isdir(parent):
            raise EnvironmentProblem(
                f"cannot create home {home}: its parent {parent} is not an existing folder; "
                f"create it (mkdir -p {shlex.quote(parent)}) or pass another --home")
        try:
            os.mkdir(home)
        except OSError as error:
            raise EnvironmentProblem(write_problem(error, home)) from error


def check_data(path: str, source: str) -> None:
    """A given input path must exist (the readers say what is wrong inside it); `source` names
    where the path came from (a flag or an environment variable)."""
    if path and spans.has_placeholders(path):
        path = spans.split_pattern(path)[0]  # the folder the pattern is resolved in
    if path and not os.path.exists(path):
        raise EnvironmentProblem(
            f"{source} {os.path.abspath(path)}: no such file or folder; give ml-1m.zip, a folder "
            "holding ratings.dat, a ratings file, a folder of spans or a pattern with {SPAN} "
            "(`kiko download --dest DIR` fetches "
            "MovieLens-1M), or leave it out for the embedded generated data")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def describe_failure(error: BaseException, home: str) -> Optional[str]:
    """One line for a run stopped by the machine (full disk, read-only home), else None."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return write_problem(link, link.filename or home)
    text = "\n".join(str(link) for link in _chain(error))
    if any(marker in text for marker in _NO_SPACE_TEXT):
        return _no_space_somewhere(home)
    if any(marker in text for marker in _READ_ONLY_TEXT):
        return (f"cannot write under home {home} (a read-only file system or read-only files): "
                f"pass a writable --home (or ${configs.HOME_ENV}), or fix its permissions")
    return None
