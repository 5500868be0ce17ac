"""Clean-up after a killed run (pipeline.recovery) on a real ML Metadata store: unfinished
executions are marked failed and their folders removed; completed ones stay."""

import json
import time

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from kiko.pipeline import home_lock, nodes, recovery


def _context(store, type_id, name):
    [context_id] = store.put_contexts([mlmd_pb2.Context(type_id=type_id, name=name)])
    return mlmd_pb2.Context(id=context_id, type_id=type_id, name=name)


def _execution(store, type_name, state, contexts, **custom):
    type_id = store.put_execution_type(mlmd_pb2.ExecutionType(name=type_name))
    execution = mlmd_pb2.Execution(type_id=type_id, last_known_state=state)
    for key, value in custom.items():
        execution.custom_properties[key].string_value = value
    execution_id, _, _ = store.put_execution(execution, [], contexts)
    return execution_id


def test_unfinished_executions_are_failed_and_their_folders_removed(tmp_path):
    """A store as a runner killed in the Trainer and one killed in the Pusher leave it."""
    metadata_path = str(tmp_path / "metadata.sqlite")
    root = tmp_path / "pipeline_root"
    serving = tmp_path / "serving_model"
    config = mlmd_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(config)
    types = {name: store.put_context_type(mlmd_pb2.ContextType(name=name))
             for name in ("pipeline", "pipeline_run", "node")}
    pipeline = _context(store, types["pipeline"], "kiko")
    run = _context(store, types["pipeline_run"], "run-killed")

    def node(node_id):
        return [pipeline, run, _context(store, types["node"], f"kiko.{node_id}")]

    done = _execution(store, "ExampleGen", mlmd_pb2.Execution.COMPLETE,
                      node(nodes.EXAMPLE_GEN_ID))
    trainer = _execution(store, "Trainer", mlmd_pb2.Execution.RUNNING, node(nodes.TRAINER_ID))
    destination = json.dumps({"filesystem": {"baseDirectory": str(serving)}})
    pusher = _execution(store, "Pusher", mlmd_pb2.Execution.NEW, node(nodes.PUSHER_ID),
                        push_destination=destination)
    # A push recorded in ML Metadata, and a version folder someone put there long ago.
    pushed_type = store.put_artifact_type(mlmd_pb2.ArtifactType(name="PushedModel"))
    recorded = mlmd_pb2.Artifact(type_id=pushed_type)
    recorded.custom_properties["pushed_destination"].string_value = str(serving / "1000000000")
    store.put_artifacts([recorded])
    orphan_version = str(int(time.time()) + 1)

    keep = [root / nodes.EXAMPLE_GEN_ID / "examples" / str(done) / "Split-train",
            root / nodes.TRAINER_ID / "model" / "99",
            serving / "1000000000", serving / "1000000001"]
    gone = [root / nodes.TRAINER_ID / "model" / str(trainer),
            root / nodes.TRAINER_ID / "model_run" / str(trainer),
            root / nodes.TRAINER_ID / ".system" / "executor_execution" / str(trainer),
            root / nodes.TRAINER_ID / ".system" / "stateful_working_dir" / "0b5e-uuid",
            root / nodes.PUSHER_ID / "pushed_model" / str(pusher),
            serving / orphan_version]
    for path in keep + gone:
        path.mkdir(parents=True)
        (path / "data").write_text("x")
    del store

    previous = home_lock.Holder(pid=4242, host="elsewhere", started="then", run_id="run-killed")
    found = recovery.recover_interrupted_runs(metadata_path, str(root), previous)

    assert [(x.execution_id, x.node_id, x.run_id) for x in found] == [
        (trainer, nodes.TRAINER_ID, "run-killed"), (pusher, nodes.PUSHER_ID, "run-killed")]
    assert sorted(p for x in found for p in x.removed) == sorted(str(p) for p in gone)
    for path in gone:
        assert not path.exists(), path
    for path in keep:
        assert (path / "data").exists(), path
    store = metadata_store.MetadataStore(config)
    states = {x.id: x.last_known_state for x in store.get_executions()}
    assert states == {done: mlmd_pb2.Execution.COMPLETE, trainer: mlmd_pb2.Execution.FAILED,
                      pusher: mlmd_pb2.Execution.FAILED}
    [failed] = store.get_executions_by_id([trainer])
    result = json.loads(failed.custom_properties["__execution_result__"].string_value)
    assert result["resultMessage"].startswith("aborted: the runner of run run-killed (")
    assert "pid 4242 on elsewhere" in result["resultMessage"]
    # Nothing is left to recover.
    assert recovery.recover_interrupted_runs(metadata_path, str(root)) == []
