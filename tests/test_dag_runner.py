"""The local runner's LocalDagRunner runs under the run id it was given (pipeline.dag_runner)."""

import os

from kiko.pipeline import configs, nodes
from kiko.pipeline.dag_runner import OwnRunIdLocalDagRunner


def test_runner_uses_the_run_id_it_was_given(tmp_path, capsys):
    """The runner's run id is the pipeline_run context TFX records and the run its summary
    describes; a compile-only run (the tfx CLI's `pipeline create`) does not start."""
    from tfx import v1 as tfx
    from tfx.tools.cli.handler import local_dag_runner_patcher

    metadata_path = str(tmp_path / "metadata.sqlite")
    schema_gen = tfx.components.ImportSchemaGen(
        schema_file=configs.schema_path(True, True)).with_id(nodes.SCHEMA_GEN_ID)
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="kiko_test", pipeline_root=str(tmp_path / "root"),
        components=[schema_gen],
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)))

    compiling = OwnRunIdLocalDagRunner("never-runs")
    with local_dag_runner_patcher.LocalDagRunnerPatcher().patch():
        compiling.run(pipeline)
    assert not compiling.started and not os.path.exists(metadata_path)

    runner = OwnRunIdLocalDagRunner("run-under-test")
    runner.run(pipeline)
    assert runner.started
    from kiko.metadata.runs import run_summary
    from kiko.metadata.store import open_store
    store = open_store(metadata_path)
    assert run_summary(store, "run-under-test")["run_id"] == "run-under-test"
    assert run_summary(store)["run_id"] == "run-under-test"
