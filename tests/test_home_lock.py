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
