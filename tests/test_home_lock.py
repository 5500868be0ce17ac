"""One run per home: the flock on HOME/run.lock (pipeline.home_lock), held by real subprocesses."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from kiko.pipeline import environment, home_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_HOLDER = textwrap.dedent("""
    import sys
    from kiko.pipeline.home_lock import HomeLock
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


def test_second_runner_is_refused_with_the_holders_pid_and_run(tmp_path, holders):
    path = tmp_path / "run.lock"
    holder = holders(path)
    with pytest.raises(home_lock.HomeBusy) as refused:
        home_lock.HomeLock(str(path)).acquire()
    message = str(refused.value)
    assert f"pid {holder.pid}" in message and "run holder-run" in message
    assert str(tmp_path) in message and "--lock-wait" in message
    assert refused.value.exit_code == environment.EXIT_BUSY
    record = json.loads(path.read_text())
    assert record["pid"] == holder.pid and record["run_id"] == "holder-run"


def test_waiting_runner_starts_when_the_holder_finishes(tmp_path, holders):
    path = tmp_path / "run.lock"
    holder = holders(path)
    lock = home_lock.HomeLock(str(path), wait_s=120, poll_s=0.1)
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
    with pytest.raises(home_lock.HomeBusy, match="after waiting 1 s"):
        home_lock.HomeLock(str(path), wait_s=1, poll_s=0.1).acquire()
    assert 1 <= time.monotonic() - start < 30


def test_lock_of_a_killed_runner_is_taken_over_and_named(tmp_path, holders, caplog):
    path = tmp_path / "run.lock"
    holder = holders(path)
    holder.kill()
    lock = home_lock.HomeLock(str(path), run_id="next-run")
    with caplog.at_level("WARNING"):
        previous = lock.acquire()
    try:
        assert previous.pid == holder.pid and previous.run_id == "holder-run"
        assert f"pid {holder.pid}" in caplog.text and "ended without releasing" in caplog.text
        assert json.loads(path.read_text())["run_id"] == "next-run"
    finally:
        lock.release()


# The lock file cannot be turned against another file (pipeline.home_lock's policy): whatever
# HOME/run.lock is, kiko either locks a regular file of its own or refuses with one line that
# names the lock file, and leaves what was there untouched.

_STALE = {"pid": 4242, "host": "elsewhere", "started": "then", "run_id": "run-earlier"}


def _refusal(path):
    """The EnvironmentProblem raised by acquiring the lock at `path` (it must be refused)."""
    lock = home_lock.HomeLock(str(path), run_id="next-run")
    with pytest.raises(environment.EnvironmentProblem) as refused:
        lock.acquire()
    assert lock._fd is None  # pylint: disable=protected-access  # nothing left held or open
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and str(path) in message
    assert refused.value.exit_code == environment.EXIT_ENVIRONMENT
    return message


def test_symlink_to_a_victim_file_is_refused_and_the_victim_kept(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("IMPORTANT\n")
    path = tmp_path / "run.lock"
    path.symlink_to(victim)
    message = _refusal(path)
    assert "symbolic link" in message and str(victim) in message
    assert victim.read_text() == "IMPORTANT\n" and path.is_symlink()


def test_dangling_symlink_is_refused_and_its_target_not_created(tmp_path):
    target = tmp_path / "elsewhere" / "planted"
    target.parent.mkdir()
    path = tmp_path / "run.lock"
    path.symlink_to(target)
    assert "symbolic link" in _refusal(path)
    assert not target.exists()


def test_runner_refuses_a_symlinked_lock_before_anything_runs(tmp_path, capsys):
    """The issue's reproduction, through the runner's own entry point: one line, the
    environment's exit status, the victim intact."""
    from kiko.pipeline import local_runner  # pylint: disable=import-outside-toplevel

    home = tmp_path / "home"
    home.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("IMPORTANT\n")
    (home / "run.lock").symlink_to(victim)
    code = local_runner.main(["--home", str(home), "--validate-only"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == environment.EXIT_ENVIRONMENT
    assert len(err) == 1 and str(home / "run.lock") in err[0] and "symbolic link" in err[0]
    assert victim.read_text() == "IMPORTANT\n"


def test_folder_as_lock_is_refused_naming_the_lock_file(tmp_path):
    path = tmp_path / "run.lock"
    path.mkdir()
    assert "folder" in _refusal(path)
    assert path.is_dir()


def test_fifo_as_lock_is_refused_without_blocking(tmp_path):
    """In a child process, so that a lock that blocked on the FIFO would fail the test (the
    subprocess timeout) instead of hanging it."""
    path = tmp_path / "run.lock"
    os.mkfifo(path)
    child = textwrap.dedent("""
        import sys
        from kiko.pipeline import environment, home_lock
        try:
            home_lock.HomeLock(sys.argv[1]).acquire()
        except environment.EnvironmentProblem as problem:
            print(problem)
    """)
    result = subprocess.run([sys.executable, "-c", child, str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=True)
    assert str(path) in result.stdout and "FIFO" in result.stdout


def test_another_users_lock_file_is_refused_and_kept(tmp_path, monkeypatch):
    """As root (CI) the file really belongs to another uid; otherwise, where chown is not
    allowed, the runner is made to look like another user (os.geteuid), which checks the same
    comparison of the file's owner with the runner's user."""
    path = tmp_path / "run.lock"
    path.write_text(json.dumps(_STALE) + "\n")
    other = os.geteuid() + 1
    if os.geteuid() == 0:
        os.chown(path, other, -1)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: other)
    message = _refusal(path)
    assert f"uid {path.stat().st_uid}" in message and "owned by" in message
    assert json.loads(path.read_text()) == _STALE


def test_immutable_lock_file_is_refused_as_immutable(tmp_path, monkeypatch):
    path = tmp_path / "run.lock"
    path.write_text(json.dumps(_STALE) + "\n")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        # Without CAP_LINUX_IMMUTABLE (not root): the kernel's answer to opening an immutable
        # file for writing (EPERM) and its FS_IOC_GETFLAGS flag, as the lock sees them.
        real_open = os.open

        def open_as_immutable(name, flags, *args):
            if os.fspath(name) == str(path) and flags & os.O_RDWR and not flags & os.O_CREAT:
                raise PermissionError(1, "Operation not permitted", str(path))
            return real_open(name, flags, *args)

        monkeypatch.setattr(home_lock.os, "open", open_as_immutable)
        monkeypatch.setattr(home_lock, "_attribute_flags",
                            lambda name: home_lock._FS_IMMUTABLE_FL)  # pylint: disable=protected-access
    try:
        assert "immutable" in _refusal(path)
    finally:
        if made.returncode == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    assert json.loads(path.read_text()) == _STALE


def test_hard_link_to_a_victim_file_is_refused_and_the_victim_kept(tmp_path):
    victim = tmp_path / "victim.json"
    victim.write_text(json.dumps(_STALE) + "\n")  # even one that looks like a record
    path = tmp_path / "run.lock"
    os.link(victim, path)
    assert "hard links" in _refusal(path)
    assert json.loads(victim.read_text()) == _STALE


def test_file_that_holds_no_holder_record_is_refused_and_kept(tmp_path):
    path = tmp_path / "run.lock"
    path.write_text("IMPORTANT notes, not a lock\n")
    assert "holder record" in _refusal(path)
    assert path.read_text() == "IMPORTANT notes, not a lock\n"


def test_stale_record_with_a_longer_records_tail_is_taken_over(tmp_path):
    """A runner killed between writing its record and cutting the longer earlier one leaves
    the earlier record's tail after its own line: still kiko's, taken over, tail removed."""
    path = tmp_path / "run.lock"
    path.write_text(json.dumps(_STALE) + "\n" + "x" * 40 + '"}\n')
    lock = home_lock.HomeLock(str(path), run_id="next-run")
    previous = lock.acquire()
    try:
        assert previous == home_lock.Holder(**_STALE)
        assert path.read_text().count("\n") == 1
        assert json.loads(path.read_text())["run_id"] == "next-run"
    finally:
        lock.release()
    assert path.read_text() == ""
