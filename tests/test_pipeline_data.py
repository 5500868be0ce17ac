"""The data slice of the pipeline (ExampleGen -> ... -> AnomaliesGate) under LocalDagRunner."""

import os
import shutil

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from kiko.components.anomalies_gate.component import DataAnomaliesError, read_anomalies
from kiko.components.movielens_example_gen.component import locate_input, make_input_config
from kiko.data.movielens.source import resolve_source
from kiko.components.movielens_example_gen.outputs import REJECTED_LINES_PROPERTY
from kiko.data.movielens import ml1m
from kiko.model import features as fk
from kiko.pipeline import nodes
from kiko.pipeline.kiko_pipeline import create_pipeline
from tests.conftest import SCHEMA_PATH

pytestmark = pytest.mark.slow

DATA_NODES = (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.SCHEMA_GEN_ID,
              nodes.EXAMPLE_VALIDATOR_ID, nodes.DRIFT_BASELINE_ID, nodes.ANOMALIES_GATE_ID)


def _run(data_dir, home):
    input_base, pattern = locate_input(resolve_source(str(data_dir)))
    pipeline = create_pipeline(
        pipeline_name="kiko-test", pipeline_root=os.path.join(home, "root"),
        input_base=input_base, input_config=make_input_config({"single_split": pattern}),
        schema_path=SCHEMA_PATH, metadata_path=os.path.join(home, "metadata.sqlite"),
        validate_only=True)
    tfx.orchestration.LocalDagRunner().run(pipeline)


def _store(home) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = os.path.join(home, "metadata.sqlite")
    return metadata_store.MetadataStore(config)


def test_data_slice_records_executions_and_artifacts(small_movielens, tmp_path):
    home = str(tmp_path)
    _run(small_movielens.out_dir, home)
    store = _store(home)
    assert store.get_context_by_type_and_name("pipeline", "kiko-test") is not None
    node_contexts = {c.name for c in store.get_contexts_by_type("node")}
    assert node_contexts == {f"kiko-test.{node}" for node in DATA_NODES}
    for node in DATA_NODES:
        context = store.get_context_by_type_and_name("node", f"kiko-test.{node}")
        executions = store.get_executions_by_context(context.id)
        assert [e.last_known_state for e in executions] == [
            metadata_store_pb2.Execution.COMPLETE], node

    types = {t.id: t.name for t in store.get_artifact_types()}
    artifacts = {}
    for artifact in store.get_artifacts():
        artifacts.setdefault(types[artifact.type_id], []).append(artifact)
    for type_name in ("Examples", "ExampleStatistics", "Schema", "ExampleAnomalies"):
        assert len(artifacts[type_name]) == 1, type_name
        assert os.path.isdir(artifacts[type_name][0].uri)
    examples = artifacts["Examples"][0]
    assert examples.properties["split_names"].string_value == '["train", "eval"]'
    assert examples.custom_properties[REJECTED_LINES_PROPERTY].int_value == 0
    anomalies = artifacts["ExampleAnomalies"][0]
    for split in ("train", "eval"):
        assert not read_anomalies(anomalies.uri, split).anomaly_info, split


def test_rating_of_seven_stops_the_run_before_training(small_movielens, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_movielens.out_dir, data)
    lines = (data / ml1m.RATINGS_FILE).read_bytes().count(b"\n")
    with open(data / ml1m.RATINGS_FILE, "a", encoding=ml1m.ENCODING) as f:
        f.write("1::99999::7::978300760\n")
    home = str(tmp_path / "home")
    with pytest.raises(DataAnomaliesError, match=r"rating: Out-of-range values .*\(e\.g\. 7 at "
                                                 rf".*ratings\.dat:{lines + 1}\)"):
        _run(data, home)
    store = _store(home)
    gate = store.get_context_by_type_and_name("node", f"kiko-test.{nodes.ANOMALIES_GATE_ID}")
    assert [e.last_known_state for e in store.get_executions_by_context(gate.id)] == [
        metadata_store_pb2.Execution.FAILED]
    types = {t.id: t.name for t in store.get_artifact_types()}
    anomalies = [a for a in store.get_artifacts() if types[a.type_id] == "ExampleAnomalies"]
    assert len(anomalies) == 1
    recorded = read_anomalies(anomalies[0].uri, "train")
    assert fk.RATING in recorded.anomaly_info


def _node_states(store, node):
    context = store.get_context_by_type_and_name("node", f"kiko-test.{node}")
    return [metadata_store_pb2.Execution.State.Name(e.last_known_state)
            for e in sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)]


def test_users_missing_from_users_dat_above_one_percent_are_an_anomaly(small_movielens, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_movielens.out_dir, data)
    users = (data / ml1m.USERS_FILE).read_bytes().splitlines(keepends=True)
    (data / ml1m.USERS_FILE).write_bytes(b"".join(users[5:]))  # ~3 % of the ratings
    with pytest.raises(DataAnomaliesError, match=r"gender: Column dropped|gender: .*fewer"):
        _run(data, str(tmp_path / "home"))


def test_a_changed_side_file_is_not_served_from_cache(small_movielens, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_movielens.out_dir, data)
    home = str(tmp_path / "home")
    _run(data, home)
    _run(data, home)
    path = data / ml1m.MOVIES_FILE
    stat = os.stat(path)
    path.write_bytes(path.read_bytes().replace(b"Drama", b"Crime", 1))  # same size and mtime
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    _run(data, home)
    assert _node_states(_store(home), nodes.EXAMPLE_GEN_ID) == ["COMPLETE", "CACHED", "COMPLETE"]


def test_empty_input_fails_example_gen(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / ml1m.RATINGS_FILE).write_bytes(b"\n\n")
    home = str(tmp_path / "home")
    with pytest.raises(Exception, match=r"no examples in split\(s\) train, eval .*0 lines read"):
        _run(data, home)
    assert _node_states(_store(home), nodes.EXAMPLE_GEN_ID) == ["FAILED"]
