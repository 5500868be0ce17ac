"""The runner's console: the story on the terminal, everything else in the log file."""

import io
import logging
import os
import re
import subprocess
import sys

import pytest

from kiko.pipeline import configs
from kiko.pipeline import run_console


def _record(message, level=logging.INFO, name="absl", pathname="/x/site-packages/tfx/a.py"):
    return logging.LogRecord(name, level, pathname, 1, message, None, None)


def test_components_start_and_finish_with_seconds_or_from_cache():
    terminal = io.StringIO()
    console = run_console.Console(terminal)
    console.handle(_record("Component StatisticsGen is running."))
    console.handle(_record("Running launcher for node_info { ... 300 lines ... }"))
    console.handle(_record("Component StatisticsGen is finished."))
    console.handle(_record("Component Trainer is running."))
    console.handle(_record("A cached execution 12 is used."))
    console.handle(_record("Component Trainer is finished."))
    lines = terminal.getvalue().splitlines()
    assert lines[0].split() == ["StatisticsGen", "started"]
    assert lines[1].split()[:3] == ["StatisticsGen", "done", "in"] and lines[1].endswith(" s")
    assert lines[3].split() == ["Trainer", "from", "cache"]
    assert len(lines) == 4


def test_only_kiko_lines_and_errors_reach_the_terminal():
    terminal = io.StringIO()
    console = run_console.Console(terminal)
    ours = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "components", "x.py")
    console.handle(_record("ArtifactQuery.property_predicate is not supported.", logging.WARNING))
    console.handle(_record("skipped 3 malformed lines\nsecond line", logging.WARNING,
                         pathname=ours))
    console.handle(_record("mf epoch 1: val RMSE 0.91", pathname=ours))
    console.handle(_record("MetadataStore with DB connection initialized"))
    console.handle(_record("Worker: severity: ERROR ... huge relayed traceback", logging.ERROR,
                         name="apache_beam.runners.portability.local_job_service"))
    console.handle(_record("Component ExampleGen is running."))
    console.handle(_record("Execution 2 failed.", logging.ERROR))
    lines = terminal.getvalue().splitlines()
    assert lines[0] == "  warning: skipped 3 malformed lines"
    assert lines[1] == "    mf epoch 1: val RMSE 0.91"
    assert lines[3].split()[:3] == ["ExampleGen", "FAILED", "after"]
    assert len(lines) == 4


def test_a_quiet_component_gets_a_progress_line_with_beam_bundles(monkeypatch):
    terminal = io.StringIO()
    console = run_console.Console(terminal)
    now = [1000.0]
    monkeypatch.setattr(run_console.time, "monotonic", lambda: now[0])
    console.handle(_record("Component Evaluator is running."))
    console.heartbeat()
    assert len(terminal.getvalue().splitlines()) == 1  # nothing new yet
    console.handle(_record("Running bundle for stage %s", logging.DEBUG,
                         name=run_console._BEAM_BUNDLES))
    console.handle(logging.LogRecord(
        run_console._BEAM_BUNDLES, logging.DEBUG, __file__, 1, "Running bundle for stage %s",
        ("((ref_AppliedPTransform_ReadFromTFRecord-Read_5)+(ref_AppliedPTransform_"
         "ExtractEvaluateAndWriteResults-Predict_9))",), None))
    now[0] += run_console.PROGRESS_EVERY_S + 0.5
    console.heartbeat()
    last = terminal.getvalue().splitlines()[-1]
    assert last.split()[:3] == ["Evaluator", "running", "10"]
    assert last.endswith(
        "Beam bundle 2 (ReadFromTFRecord/Read .. ExtractEvaluateAndWriteResults/Predict)")
    console.heartbeat()  # not again right away
    assert terminal.getvalue().splitlines()[-1] == last
    assert len(terminal.getvalue().splitlines()) == 2


def test_story_sends_process_output_to_the_log_and_the_story_to_the_terminal(tmp_path, capfd):
    home = str(tmp_path / "home")
    with run_console.story(home) as console:
        os.write(2, b"C++ chatter on stderr\n")
        os.write(1, b"a library printing to stdout\n")
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('worker noise')"],
                       check=True)
        logger = logging.getLogger("kiko-test-story")
        logger.setLevel(logging.INFO)
        logger.info("Component Pusher is running.")
        console.say("  a line of the story")
    out, err = capfd.readouterr()
    (log_name,) = os.listdir(configs.Paths(home).log_dir)
    log = open(os.path.join(configs.Paths(home).log_dir, log_name)).read()
    for noise in ("C++ chatter", "a library printing", "worker noise"):
        assert noise in log and noise not in out + err
    assert "Pusher" in out and "a line of the story" in out
    assert out.count(log_name) == 2  # where the full log is, at the start and at the end
    # The descriptors are back: output after the block reaches the terminal again.
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


@pytest.mark.slow
def test_a_failed_run_tells_where_and_why_in_a_few_lines(small_movielens, tmp_path):
    """The runner as a person starts it, on data with a malformed line: ExampleGen fails."""
    import shutil

    from kiko.data.movielens import ml1m

    data = tmp_path / "data"
    shutil.copytree(small_movielens.out_dir, data)
    with open(data / ml1m.RATINGS_FILE, "a", encoding=ml1m.ENCODING) as f:
        f.write("1::2::x::978300760\n")
    home = tmp_path / "home"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, os.path.join(repo, "pipeline", "local_runner.py"), "--data", str(data),
         "--home", str(home), "--workers", "1"],
        capture_output=True, text=True, timeout=900, cwd=repo)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert len(out.splitlines()) < 40, out
    assert "MovieLensExampleGen    FAILED after" in out
    assert re.search(r"^  status +FAILED at MovieLensExampleGen", out, re.MULTILINE)
    assert f"{ml1m.RATINGS_FILE}:9001: rating 'x' is not a number" in out  # the failure line
    report_line = next(line for line in out.splitlines() if line.strip().startswith("report:"))
    assert os.path.isfile(report_line.split("report:", 1)[1].strip())
    (log_name,) = os.listdir(configs.Paths(str(home)).log_dir)
    log = open(os.path.join(configs.Paths(str(home)).log_dir, log_name)).read()
    assert "Traceback" in log and "Running launcher for node_info" in log
