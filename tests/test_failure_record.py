"""A failed run's reason stays on record (pipeline.recovery.record_failure): ML Metadata keeps
the line the runner told, and `kiko inspect` and `kiko report` say it in the same words; a killed
run's duration ends when its runner was last seen at work."""

import html
import os
import shutil
import subprocess
import sys

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from kiko.metadata.runs import failure_message, list_runs
from kiko.metadata.store import open_store
from kiko.pipeline import configs, nodes, recovery

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _store(tmp_path):
    path = str(tmp_path / "metadata.sqlite")
    config = mlmd_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    return path, metadata_store.MetadataStore(config)


def _run_with(store, run_id, states):
    """A run of the pipeline `kiko` whose nodes ended in `states` ({node id: state})."""
    types = {name: store.put_context_type(mlmd_pb2.ContextType(name=name))
             for name in ("pipeline", "pipeline_run", "node")}
    [pipeline_id, run_context_id] = store.put_contexts([
        mlmd_pb2.Context(type_id=types["pipeline"], name=configs.PIPELINE_NAME),
        mlmd_pb2.Context(type_id=types["pipeline_run"], name=run_id)])
    ids = {}
    for node_id, state in states.items():
        [node_context_id] = store.put_contexts([mlmd_pb2.Context(
            type_id=types["node"], name=f"{configs.PIPELINE_NAME}.{node_id}")])
        contexts = [store.get_contexts_by_id([i])[0]
                    for i in (pipeline_id, run_context_id, node_context_id)]
        type_id = store.put_execution_type(mlmd_pb2.ExecutionType(name=node_id))
        ids[node_id], _, _ = store.put_execution(
            mlmd_pb2.Execution(type_id=type_id, last_known_state=state), [], contexts)
    return ids


def test_the_told_failure_is_recorded_on_the_failed_execution_and_read_back(tmp_path):
    path, store = _store(tmp_path)
    ids = _run_with(store, "run-1", {nodes.EXAMPLE_GEN_ID: mlmd_pb2.Execution.FAILED})
    told = "data/ratings.csv:7: rating 'x' is not a number: '1,2,x,978300760'"
    assert failure_message(open_store(path), "run-1", nodes.EXAMPLE_GEN_ID) is None

    assert recovery.record_failure(path, "run-1", told) == ids[nodes.EXAMPLE_GEN_ID]

    assert failure_message(open_store(path), "run-1", nodes.EXAMPLE_GEN_ID) == told
    assert recovery.record_failure(path, "no-such-run", told) is None


def test_a_killed_run_lasts_until_its_runner_was_last_seen(tmp_path):
    """Cleaned up at once, the run's time ends at the last file its Trainer wrote, not at the
    clean-up (nor at the Trainer's start)."""
    path, store = _store(tmp_path)
    ids = _run_with(store, "killed", {nodes.EXAMPLE_GEN_ID: mlmd_pb2.Execution.COMPLETE,
                                      nodes.TRAINER_ID: mlmd_pb2.Execution.RUNNING})
    [trainer] = store.get_executions_by_id([ids[nodes.TRAINER_ID]])
    root = tmp_path / "pipeline_root"
    written = root / nodes.TRAINER_ID / "model_run" / str(trainer.id) / "events"
    written.parent.mkdir(parents=True)
    written.write_text("x")
    last_seen_s = trainer.create_time_since_epoch / 1000 + 42.0
    os.utime(written, (last_seen_s, last_seen_s))
    started_ms = min(x.create_time_since_epoch for x in store.get_executions())

    recovery.recover_interrupted_runs(path, str(root))

    [run] = list_runs(open_store(path))
    assert run["status"] == "FAILED"
    assert run["duration_s"] == pytest.approx(last_seen_s - started_ms / 1000, abs=0.002)
    trainer_row = next(r for r in run["nodes"] if r["node_id"] == nodes.TRAINER_ID)
    assert trainer_row["duration_s"] == pytest.approx(42.0, abs=0.002)
    assert not written.exists()


@pytest.mark.slow
def test_inspect_and_report_name_a_malformed_line_like_the_run_did(small_movielens, tmp_path):
    from kiko.data.movielens import ml1m

    data = tmp_path / "data"
    shutil.copytree(small_movielens.out_dir, data)
    lines = (data / ml1m.RATINGS_FILE).read_text(encoding=ml1m.ENCODING).splitlines(True)
    lines[6] = "1::2::x::978300760\n"
    (data / ml1m.RATINGS_FILE).write_text("".join(lines), encoding=ml1m.ENCODING)
    home = tmp_path / "home"
    run = subprocess.run(
        [sys.executable, "pipeline/local_runner.py", "--data", str(data), "--home", str(home),
         "--workers", "1", "--validate-only"],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    [told] = [line.split("failed:", 1)[1].strip() for line in run.stdout.splitlines()
              if line.strip().startswith("failed:")]
    assert f"{ml1m.RATINGS_FILE}:7: " in told

    inspect = subprocess.run([sys.executable, "-m", "kiko.cli", "inspect", "--home", str(home),
                              "summary"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert inspect.returncode == 0, inspect.stderr[-3000:]
    assert told in inspect.stdout
    report_path = tmp_path / "report.html"
    report = subprocess.run([sys.executable, "-m", "kiko.cli", "report", "--home", str(home),
                             "--out", str(report_path)],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert report.returncode == 0, report.stderr[-3000:]
    page = html.unescape(report_path.read_text())
    assert told in page
    # Nothing was read: the page says so instead of promising counts from StatisticsGen.
    assert "The run wrote no examples" in page and "come from StatisticsGen" not in page
