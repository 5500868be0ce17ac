"""The whole pipeline under LocalDagRunner on a small generated set, as users drive it."""

import os
import subprocess
import sys

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from kiko.pipeline import nodes
from kiko.pipeline import configs
from tests.conftest import FAST_HPARAMS, run_local_pipeline

pytestmark = pytest.mark.slow

NODES = (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.SCHEMA_GEN_ID, nodes.EXAMPLE_VALIDATOR_ID,
         nodes.ANOMALIES_GATE_ID, nodes.TRAINER_ID, nodes.MODEL_RESOLVER_ID, nodes.EVALUATOR_ID,
         nodes.PUSHER_ID)
# Nodes that run an executor (the resolver only resolves inputs).
EXECUTED = tuple(n for n in NODES if n != nodes.MODEL_RESOLVER_ID)


def _store(home) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = configs.Paths(str(home)).metadata_path
    return metadata_store.MetadataStore(config)


def _states(store, node):
    context = store.get_context_by_type_and_name("node", f"{configs.PIPELINE_NAME}.{node}")
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    return [metadata_store_pb2.Execution.State.Name(e.last_known_state) for e in executions]


def _artifacts(store, type_name):
    return sorted(store.get_artifacts_by_type(type_name), key=lambda a: a.id)


def _pushed_versions(home):
    serving = configs.Paths(str(home)).serving_dir
    return sorted(os.listdir(serving)) if os.path.isdir(serving) else []


def _run_again(home, small_movielens, *extra_args):
    """Another run in `home` (loose RMSE bound); the store, and the latest (blessed, pushed)."""
    run_local_pipeline(small_movielens.out_dir, home, "--rmse-upper-bound", "2.0", *extra_args)
    store = _store(home)
    return store, (_artifacts(store, "ModelBlessing")[-1].custom_properties["blessed"].int_value,
                   _artifacts(store, "PushedModel")[-1].custom_properties["pushed"].int_value)


def _validation_failures(store):
    """The threshold failures TFMA recorded in the latest evaluation."""
    import tensorflow_model_analysis as tfma

    validation = tfma.load_validation_result(_artifacts(store, "ModelEvaluation")[-1].uri)
    return [f for per_slice in validation.metric_validations_per_slice
            for f in per_slice.failures]


def _latest_rmse(store):
    """Overall RMSE of the candidate and of the baseline in the latest evaluation."""
    import tensorflow_model_analysis as tfma

    uri = _artifacts(store, "ModelEvaluation")[-1].uri

    def overall(model_name):
        result = tfma.load_eval_result(uri, model_name=model_name)
        (metrics,) = [m for key, m in result.slicing_metrics if not key]
        return metrics[""][""]["root_mean_squared_error"]["doubleValue"]
    return overall(tfma.CANDIDATE_KEY), overall(tfma.BASELINE_KEY)


@pytest.fixture(scope="module")
def home(pipeline_home):
    return pipeline_home


def test_first_run_blesses_and_pushes(home):
    store = _store(home)
    for node in EXECUTED:
        assert _states(store, node) == ["COMPLETE"], node
    (blessing,) = _artifacts(store, "ModelBlessing")
    assert blessing.custom_properties["blessed"].int_value == 1
    (pushed,) = _artifacts(store, "PushedModel")
    assert pushed.custom_properties["pushed"].int_value == 1
    (version,) = _pushed_versions(home)
    version_dir = os.path.join(configs.Paths(home).serving_dir, version)
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    assert pushed.custom_properties["pushed_destination"].string_value.rstrip("/") == \
        version_dir.rstrip("/")


def test_evaluator_metrics_match_the_trainers_own_eval_scores(home):
    """TFMA (serving_default signature, eval split) and the Trainer (in-memory model) agree."""
    import json

    import tensorflow_model_analysis as tfma

    store = _store(home)
    (model_run,) = _artifacts(store, "ModelRun")
    with open(os.path.join(model_run.uri, "metrics.json")) as f:
        trainer_eval = json.load(f)["final"]["eval"]
    (evaluation,) = _artifacts(store, "ModelEvaluation")
    overall = next(m for m in tfma.load_metrics(evaluation.uri)
                   if not m.slice_key.single_slice_keys)
    tfma_values = {kv.key.name: kv.value.double_value.value
                   for kv in overall.metric_keys_and_values}
    assert tfma_values["example_count"] == trainer_eval["examples"]
    for name, trainer_name in (("root_mean_squared_error", "rmse"),
                               ("mean_squared_error", "mse"), ("mean_absolute_error", "mae")):
        assert tfma_values[name] == pytest.approx(trainer_eval[trainer_name], abs=1e-5), name


def test_identical_second_run_is_served_from_cache(home, small_movielens):
    before = _pushed_versions(home)
    run_local_pipeline(small_movielens.out_dir, home, "--rmse-upper-bound", "2.0")
    store = _store(home)
    assert len(store.get_contexts_by_type("pipeline_run")) == 2
    for node in EXECUTED:
        assert _states(store, node) == ["COMPLETE", "CACHED"], node
    assert _pushed_versions(home) == before


def test_worse_model_is_not_blessed_and_pushed_model_stays(home, small_movielens):
    before = _pushed_versions(home)
    store, decision = _run_again(home, small_movielens, "--hparam", "blend=false",
                                 "--hparam", "epochs=1", "--hparam", "learning_rate=0.00001")
    assert _states(store, nodes.TRAINER_ID)[-1] == "COMPLETE"
    assert decision == (0, 0)
    assert _pushed_versions(home) == before
    # Refused by the change threshold against the blessed baseline (not only by the bound).
    changes = [(f.metric_key.name, f.metric_threshold.change_threshold.absolute.value)
               for f in _validation_failures(store) if f.metric_key.is_diff]
    assert changes == [("root_mean_squared_error", pytest.approx(configs.MAX_RMSE_INCREASE))]


def test_better_model_is_blessed_and_pushed_over_the_baseline(home, small_movielens):
    before = _pushed_versions(home)
    store, decision = _run_again(home, small_movielens, "--max-rmse-increase", "0",
                                 "--hparam", "epochs=10", "--hparam", "autorec_epochs=6")
    candidate, baseline = _latest_rmse(store)
    assert candidate < baseline
    assert decision == (1, 1)
    after = _pushed_versions(home)
    assert len(after) == len(before) + 1 and set(before) < set(after)


def test_tfx_cli_creates_and_runs_the_pipeline(small_movielens, tmp_path):
    env = dict(os.environ)
    env.update({
        "LOCAL_HOME": str(tmp_path / "tfx_local_home"),
        configs.HOME_ENV: str(tmp_path / "kiko_home"),
        configs.DATA_ENV: small_movielens.out_dir,
        configs.HPARAMS_ENV: ",".join(f"{k}={v}" for k, v in FAST_HPARAMS.items()),
    })
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tfx_cli = os.path.join(os.path.dirname(sys.executable), "tfx")

    def tfx(*args):
        result = subprocess.run([tfx_cli, *args, "--engine", "local"], cwd=repo, env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    assert "created successfully" in tfx(
        "pipeline", "create", "--pipeline_path", "pipeline/local_runner.py")
    assert os.path.isdir(tmp_path / "tfx_local_home")
    tfx("run", "create", "--pipeline_name", configs.PIPELINE_NAME)
    store = _store(tmp_path / "kiko_home")
    for node in EXECUTED:
        assert _states(store, node) == ["COMPLETE"], node
