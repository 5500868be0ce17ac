"""One-line messages naming the path and what to do, for a bad home, missing data, a read-only or
full disk (pipeline.environment), as the runner prints them.

Read-only and full disks are real tmpfs mounts (the `tmpfs` fixture: CI runs as root).
"""

import errno
import tempfile

import pytest

from kiko.pipeline import configs, environment, local_runner


def _run_main(capsys, *argv):
    """local_runner.main in this process; (exit status, stderr lines)."""
    code = local_runner.main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def test_home_that_is_a_file_is_refused(tmp_path, capsys):
    home = tmp_path / "home"
    home.write_text("not a folder")
    code, err = _run_main(capsys, "--home", str(home))
    assert code == environment.EXIT_ENVIRONMENT
    assert len(err) == 1 and str(home) in err[0] and "is a file" in err[0]


def test_home_whose_parent_is_missing_is_refused(tmp_path, capsys):
    home = tmp_path / "missing" / "home"
    code, err = _run_main(capsys, "--home", str(home))
    assert code == environment.EXIT_ENVIRONMENT
    assert len(err) == 1 and f"mkdir -p {tmp_path / 'missing'}" in err[0]
    assert not (tmp_path / "missing").exists()


def test_missing_data_path_is_named(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nowhere" / "ml-1m.zip"
    code, err = _run_main(capsys, "--home", str(tmp_path / "home"), "--data", str(missing))
    assert code == environment.EXIT_ENVIRONMENT
    assert len(err) == 1 and err[0].startswith(f"kiko: --data {missing}: no such file")
    monkeypatch.setenv(configs.DATA_ENV, str(missing))
    code, err = _run_main(capsys, "--home", str(tmp_path / "home"))
    assert code == environment.EXIT_ENVIRONMENT and f"${configs.DATA_ENV} {missing}" in err[0]


def _earlier_home(path):
    (path / "home").mkdir()
    (path / "home" / "metadata.sqlite").write_bytes(b"")  # as a previous run leaves it


def test_read_only_home_is_named_before_anything_runs(tmpfs, capsys):
    home = tmpfs(read_only=True, prepare=_earlier_home) / "home"
    code, err = _run_main(capsys, "--home", str(home))
    assert code == environment.EXIT_ENVIRONMENT
    assert len(err) == 1 and str(home) in err[0] and "read-only file system" in err[0]
    assert "--home" in err[0]


def test_read_only_mount_as_home_cannot_be_created(tmpfs, capsys):
    home = tmpfs(read_only=True) / "home"
    code, err = _run_main(capsys, "--home", str(home))
    assert code == environment.EXIT_ENVIRONMENT
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
    message = environment.describe_failure(full.value, str(home))
    assert message.startswith(f"no space left on the device holding {home} (0.0 MiB free now)")
    assert "MiB free now" in message and "--home" in message
    for error in (RuntimeError("OSError: [Errno 28] No space left on device [while running "
                               "'WriteSplit[train]/Write/Write/WriteImpl/WriteBundles']"),
                  RuntimeError("Cannot commit: database or disk is full")):
        message = environment.describe_failure(error, str(home))
        assert message.startswith(f"no space left on a device the run writes to: home {home} (")
        assert f"temp folder {tempfile.gettempdir()}" in message and "--home" in message
    assert environment.describe_failure(ValueError("no examples"), str(home)) is None
