"""The whole pipeline with its Beam components on a dask.distributed cluster (a scheduler and two
workers on localhost, started as the README says) produces what the DirectRunner produces:
the same examples per split, the same statistics, the same eval metrics."""

import collections
import glob
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from absl.testing import absltest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from kiko.pipeline import nodes
from kiko.pipeline import configs
from tests.conftest import run_local_pipeline

pytestmark = pytest.mark.slow

EXECUTED = (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.SCHEMA_GEN_ID, nodes.EXAMPLE_VALIDATOR_ID,
            nodes.ANOMALIES_GATE_ID, nodes.TRAINER_ID, nodes.EVALUATOR_ID, nodes.PUSHER_ID)


def _stop(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory):
    """`dask scheduler` and `dask worker --nworkers 2 --preload kiko` as subprocesses,
    without TF_USE_LEGACY_KERAS in their environment (as from a user's shell)."""
    from dask.distributed import Client

    folder = tmp_path_factory.mktemp("dask_cluster")
    scheduler_file = str(folder / "scheduler.json")
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    log = open(folder / "cluster.log", "w")
    processes = [subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", scheduler_file], cwd=folder, env=env, stdout=log, stderr=log)]
    try:
        processes.append(subprocess.Popen(
            [dask, "worker", "--scheduler-file", scheduler_file, "--nworkers", "2",
             "--nthreads", "1", "--preload", "kiko", "--no-dashboard",
             "--local-directory", str(folder)], cwd=folder, env=env, stdout=log, stderr=log))
        with Client(scheduler_file=scheduler_file, timeout=120) as client:
            client.wait_for_workers(2, timeout=180)
        with open(scheduler_file) as f:
            yield json.load(f)["address"]
    finally:
        for process in reversed(processes):
            _stop(process)
        log.close()


@pytest.fixture(scope="module")
def dask_home(small_movielens, dask_scheduler, tmp_path_factory):
    """The same run as conftest's `pipeline_home`, with --dask-scheduler."""
    home = tmp_path_factory.mktemp("dask_home")
    run_local_pipeline(small_movielens.out_dir, home, "--rmse-upper-bound", "2.0",
                       "--dask-scheduler", dask_scheduler)
    return str(home)


def _store(home) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = configs.Paths(str(home)).metadata_path
    return metadata_store.MetadataStore(config)


def _first(home, type_name):
    """The artifact of the home's first run (pipeline_home may hold later runs too)."""
    return min(_store(home).get_artifacts_by_type(type_name), key=lambda a: a.id)


def test_every_component_completes(dask_home):
    store = _store(dask_home)
    for node in EXECUTED:
        context = store.get_context_by_type_and_name("node", f"{configs.PIPELINE_NAME}.{node}")
        states = [e.last_known_state for e in store.get_executions_by_context(context.id)]
        assert states == [metadata_store_pb2.Execution.COMPLETE], node


def test_beam_work_ran_on_the_cluster(dask_home, dask_scheduler):
    from dask.distributed import Client

    with Client(dask_scheduler) as client:
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert "run_pardo" in prefixes and "read_bundles" in prefixes


def _splits(artifact):
    return json.loads(artifact.properties["split_names"].string_value)


def _records(examples, split):
    files = glob.glob(os.path.join(examples.uri, f"Split-{split}", "*"))
    assert files, (examples.uri, split)
    return collections.Counter(r.numpy() for r in tf.data.TFRecordDataset(
        files, compression_type="GZIP"))


def test_same_examples_per_split(dask_home, pipeline_home):
    dask, direct = _first(dask_home, "Examples"), _first(pipeline_home, "Examples")
    assert _splits(dask) == _splits(direct)
    for split in _splits(direct):
        assert _records(dask, split) == _records(direct, split), split
    # Whatever counts ExampleGen records on its artifact (rejected lines, ...) agree too.
    counts = {name for name, value in direct.custom_properties.items() if value.HasField(
        "int_value")}
    for name in counts:
        assert dask.custom_properties[name] == direct.custom_properties[name], name


def test_same_statistics(dask_home, pipeline_home):
    """Equal up to float summation order (TFDV's own comparison, relative 1e-4)."""
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils import test_util

    dask, direct = _first(dask_home, "ExampleStatistics"), _first(
        pipeline_home, "ExampleStatistics")
    for split in _splits(direct):
        actual, expected = (tfdv.load_stats_binary(
            os.path.join(a.uri, f"Split-{split}", "FeatureStats.pb")) for a in (dask, direct))
        assert len(actual.datasets) == len(expected.datasets) == 1
        test_util.assert_dataset_feature_stats_proto_equal(
            absltest.TestCase(), actual.datasets[0], expected.datasets[0])


def _metrics(evaluation):
    import tensorflow_model_analysis as tfma

    return {(str(m.slice_key), kv.key.name): kv.value.double_value.value
            for m in tfma.load_metrics(evaluation.uri) for kv in m.metric_keys_and_values}


def test_same_eval_metrics(dask_home, pipeline_home):
    dask = _metrics(_first(dask_home, "ModelEvaluation"))
    direct = _metrics(_first(pipeline_home, "ModelEvaluation"))
    assert dask.keys() == direct.keys()
    assert (("", "root_mean_squared_error")) in direct
    for key, value in direct.items():
        assert dask[key] == pytest.approx(value, rel=1e-6), key
