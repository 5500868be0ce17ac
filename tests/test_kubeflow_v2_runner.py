"""The Kubeflow Pipelines v2 / Vertex compile: what the JSON holds, and the container command."""

import json
import os
import re
import subprocess
import sys

import pytest
from google.protobuf import json_format
from tensorflow_model_analysis.proto import config_pb2

from kiko.pipeline import nodes
from kiko.pipeline import configs, kubeflow_v2_runner
from kiko.pipeline.kiko_pipeline import RUN_FN
from tests.conftest import SCHEMA_PATH

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "registry.example/kiko:test"
ROOT = "gs://bucket/kiko"
DATA = "gs://bucket/data/ml-1m.zip"
BEAM_NODES = (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.EVALUATOR_ID)
COMPONENTS = (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.SCHEMA_GEN_ID, nodes.EXAMPLE_VALIDATOR_ID,
              nodes.ANOMALIES_GATE_ID, nodes.TRAINER_ID, nodes.EVALUATOR_ID, nodes.PUSHER_ID)
# The compiler splits TFX's LatestBlessedModelStrategy into two queries.
BLESSING_QUERY = f"{nodes.MODEL_RESOLVER_ID}-model-blessing-resolver"
MODEL_QUERY = f"{nodes.MODEL_RESOLVER_ID}-model-resolver"


def _compile(tmp_path, *extra, env=None):
    output = str(tmp_path / "pipeline.json")
    kubeflow_v2_runner.main(["--image", IMAGE, "--pipeline-root", ROOT, "--data", DATA,
                             "--output", output, *extra])
    with open(output) as f:
        return json.load(f)["pipelineSpec"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return _compile(tmp_path_factory.mktemp("kfp"), "--rmse-upper-bound", "0.95",
                    "--max-rmse-increase", "0.02", "--beam-arg=--runner=DataflowRunner",
                    "--beam-arg=--region=europe-west4")


def _tasks(spec):
    return spec["root"]["dag"]["tasks"]


def _executor(spec, node):
    return spec["deploymentSpec"]["executors"][f"{node}_executor"]


def _parameter(spec, node, name):
    value = _tasks(spec)[node]["inputs"]["parameters"][name]["runtimeValue"]["constantValue"]
    return next(iter(value.values()))


def test_every_component_is_a_task_in_the_image_with_its_executor(spec):
    from kiko.pipeline.kubeflow_v2_runner import build, parse_args

    pipeline = build(parse_args(["--image", IMAGE, "--pipeline-root", ROOT, "--data", DATA]))
    expected = {c.id: f"{c.executor_spec.executor_class.__module__}."
                       f"{c.executor_spec.executor_class.__name__}"
                for c in pipeline.components if c.id != nodes.MODEL_RESOLVER_ID}
    assert set(expected) == set(COMPONENTS)
    assert expected[nodes.EXAMPLE_GEN_ID] == "kiko.components.movielens_example_gen.executor.Executor"
    assert set(_tasks(spec)) == set(COMPONENTS) | {BLESSING_QUERY, MODEL_QUERY}
    for node, executor_class in expected.items():
        container = _executor(spec, node)["container"]
        assert container["image"] == IMAGE, node
        assert container["command"] == list(kubeflow_v2_runner.CONTAINER_COMMAND), node
        args = container["args"]
        assert args[args.index("--executor_class_path") + 1] == executor_class, node


def test_trainer_module_schema_and_data_resolve_inside_the_image(spec):
    assert _parameter(spec, nodes.TRAINER_ID, "run_fn") == RUN_FN
    image_schema = configs.image_schema_path(has_users=True, has_movies=True)
    assert _parameter(spec, nodes.SCHEMA_GEN_ID, "schema_file") == image_schema
    assert image_schema == os.path.join(configs.IMAGE_KIKO_DIR, os.path.relpath(SCHEMA_PATH, REPO))
    assert _parameter(spec, nodes.EXAMPLE_GEN_ID, "input_base") == "gs://bucket/data"
    assert "ml-1m.zip" in _parameter(spec, nodes.EXAMPLE_GEN_ID, "input_config")
    assert f'"{ROOT}/serving_model"' in _parameter(spec, nodes.PUSHER_ID, "push_destination")


def test_beam_arguments_reach_the_beam_components_only(spec):
    for node in COMPONENTS:
        args = _executor(spec, node)["container"]["args"]
        beam = "--runner=DataflowRunner" in args and "--region=europe-west4" in args
        assert beam == (node in BEAM_NODES), node
    driver = _executor(spec, nodes.EXAMPLE_GEN_ID)["container"]["lifecycle"]["preCacheCheck"]
    assert "--runner=DataflowRunner" in driver["args"]


def test_caching_survives_and_can_be_turned_off(spec, tmp_path):
    for node in COMPONENTS:
        assert _tasks(spec)[node]["cachingOptions"] == {"enableCache": True}, node
    uncached = _compile(tmp_path, "--no-cache")
    assert not any(task.get("cachingOptions") for task in _tasks(uncached).values())


def test_gate_thresholds_blessing_and_push_survive(spec):
    """Evaluator thresholds -> blessing -> Pusher, against the latest blessed model."""
    eval_config = json_format.Parse(_parameter(spec, nodes.EVALUATOR_ID, "eval_config"),
                                    config_pb2.EvalConfig())
    thresholds = [t.threshold for spec_ in eval_config.metrics_specs
                  for m in spec_.metrics for t in m.per_slice_thresholds]
    assert [t.value_threshold.upper_bound.value for t in thresholds] == [0.95]
    assert [t.change_threshold.absolute.value for t in thresholds] == [0.02]

    evaluator = _tasks(spec)[nodes.EVALUATOR_ID]["inputs"]["artifacts"]
    assert evaluator["baseline_model"]["taskOutputArtifact"]["producerTask"] == MODEL_QUERY
    assert evaluator["model"]["taskOutputArtifact"]["producerTask"] == nodes.TRAINER_ID
    pusher = _tasks(spec)[nodes.PUSHER_ID]["inputs"]["artifacts"]
    assert pusher["model_blessing"]["taskOutputArtifact"] == {
        "producerTask": nodes.EVALUATOR_ID, "outputArtifactKey": "blessing"}
    queries = _executor(spec, BLESSING_QUERY)["resolver"]["outputArtifactQueries"]
    assert re.search(r"metadata\.blessed\.number_value=1\b", queries["model_blessing"]["filter"])


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(configs.KFP_IMAGE_ENV, "env.example/kiko:1")
    monkeypatch.setenv(configs.KFP_PIPELINE_ROOT_ENV, "gs://env-bucket/root")
    monkeypatch.setenv(configs.DATA_ENV, "gs://env-bucket/ratings.dat")
    monkeypatch.setenv(configs.BEAM_ARGS_ENV, "--runner=FlinkRunner")
    output = tmp_path / "env.json"
    kubeflow_v2_runner.main(["--output", str(output)])
    job = json.loads(output.read_text())
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://env-bucket/root"
    spec = job["pipelineSpec"]
    assert _executor(spec, nodes.STATISTICS_GEN_ID)["container"]["image"] == "env.example/kiko:1"
    assert "--runner=FlinkRunner" in _executor(spec, nodes.EVALUATOR_ID)["container"]["args"]


@pytest.mark.parametrize("missing", ["--image", "--pipeline-root", "--data"])
def test_missing_setting_is_an_error_naming_the_flag(missing, monkeypatch, capsys):
    for env in (configs.KFP_IMAGE_ENV, configs.KFP_PIPELINE_ROOT_ENV, configs.DATA_ENV):
        monkeypatch.delenv(env, raising=False)
    argv = {"--image": IMAGE, "--pipeline-root": ROOT, "--data": DATA}
    del argv[missing]
    with pytest.raises(SystemExit):
        kubeflow_v2_runner.parse_args([x for kv in argv.items() for x in kv])
    assert f"{missing} is required" in capsys.readouterr().err


def test_data_must_name_a_file():
    assert kubeflow_v2_runner.input_location("gs://b/ml-1m/ratings.dat") == (
        "gs://b/ml-1m", "ratings.dat")
    assert kubeflow_v2_runner.data_layout("gs://b/ml-25m.zip", "auto") == "ml-csv"
    assert kubeflow_v2_runner.data_layout("gs://b/ml-100k/u.data", "auto") == "ml-100k"
    assert kubeflow_v2_runner.data_layout("gs://b/mine.dat", "ml-10m") == "ml-10m"
    with pytest.raises(ValueError, match="pass --layout"):
        kubeflow_v2_runner.data_layout("gs://b/mine.dat", "auto")
    for bad in ("gs://b/ml-1m/", "ratings.dat"):
        with pytest.raises(ValueError, match="URI of a MovieLens zip"):
            kubeflow_v2_runner.input_location(bad)


def test_a_metadata_setting_is_refused_not_dropped(small_movielens, tmp_path):
    """The local runner's pipeline carries SQLite ML Metadata: Kubeflow would drop it."""
    from kiko.pipeline import local_runner

    local = local_runner.build(local_runner.parse_args(
        ["--data", small_movielens.out_dir, "--home", str(tmp_path)]))
    with pytest.raises(ValueError, match="own ML Metadata"):
        kubeflow_v2_runner.compile_pipeline(local, IMAGE, str(tmp_path / "local.json"))


@pytest.mark.slow
def test_container_command_runs_a_compiled_step(spec, tmp_path):
    """ImportSchemaGen's step as the container runs it (command, executor, invocation JSON),
    with the schema path of this checkout instead of the image's."""
    container = _executor(spec, nodes.SCHEMA_GEN_ID)["container"]
    schema_uri = str(tmp_path / "schema")
    invocation = {
        "inputs": {"parameters": {"schema_file": {"stringValue": SCHEMA_PATH}}},
        "outputs": {"artifacts": {"schema": {"artifacts": [{
            "name": "schema", "type": {"schemaTitle": "tfx.Schema"}, "uri": schema_uri}]}},
            "outputFile": str(tmp_path / "task" / "executor_output.json")}}
    args = [json.dumps(invocation) if arg == "{{$}}" else arg for arg in container["args"]]
    command = [sys.executable] + container["command"][1:]
    result = subprocess.run(command + args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(schema_uri, "schema.pbtxt")) as f, open(SCHEMA_PATH) as g:
        assert f.read() == g.read()


def test_spans_compile_with_the_newest_or_a_given_span(tmp_path):
    """A {SPAN} pattern reaches ExampleGen: the newest span by default, --span N as a one-span
    range; the Trainer reads the new span (no custom resolver compiles for Kubeflow v2)."""
    def example_gen_parameters(spec):
        parameters = _tasks(spec)[nodes.EXAMPLE_GEN_ID]["inputs"]["parameters"]
        range_config = (_parameter(spec, nodes.EXAMPLE_GEN_ID, "range_config")
                        if "range_config" in parameters else None)
        return (json.loads(_parameter(spec, nodes.EXAMPLE_GEN_ID, "input_config")),
                _parameter(spec, nodes.EXAMPLE_GEN_ID, "input_base"),
                json.loads(range_config) if range_config else None)

    data = "gs://bucket/ratings/span-{SPAN}.zip"
    newest = _compile(tmp_path, "--data", data, "--layout", "ml-1m")
    input_config, input_base, range_config = example_gen_parameters(newest)
    assert input_base == "gs://bucket/ratings"
    assert [s["pattern"] for s in input_config["splits"]] == ["span-{SPAN}.zip"]
    assert range_config is None
    assert nodes.SPAN_WINDOW_ID not in _tasks(newest)
    given = _compile(tmp_path, "--data", data, "--layout", "ml-1m", "--span", "4")
    _, _, range_config = example_gen_parameters(given)
    assert range_config == {"static_range": {"start_span_number": 4, "end_span_number": 4}}
