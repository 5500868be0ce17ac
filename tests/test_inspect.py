"""`kiko inspect` (kiko.inspect_cli) and the ML Metadata readers it shows (kiko.metadata) over
real pipeline homes: a blessed and pushed run, a model that was not blessed, and a run stopped
by data anomalies. Runs the pipeline (slow)."""


import glob
import json
import os
import re

import pytest
import tensorflow_model_analysis as tfma

from kiko import inspect_cli
from kiko.data.movielens import ml1m
from kiko.metadata.artifacts import list_artifacts
from kiko.metadata.evaluation import EXAMPLE_COUNT, MAE, OVERALL, RMSE, model_slices
from kiko.metadata.lineage import lineage
from kiko.metadata.models import list_models, pushed_model
from kiko.metadata.runs import COMPLETE, FAILED, list_runs, run_summary
from kiko.metadata.store import open_store
from kiko.model import features as fk
from kiko.pipeline import configs, nodes
from kiko.text import IDS_NOTE
from tests.conftest import FAST_HPARAMS, run_local_pipeline

pytestmark = pytest.mark.slow

NODE_IDS = {nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.SCHEMA_GEN_ID,
            nodes.EXAMPLE_VALIDATOR_ID, nodes.DRIFT_BASELINE_ID, nodes.ANOMALIES_GATE_ID,
            nodes.SPAN_WINDOW_ID, nodes.BASE_MODEL_RESOLVER_ID, nodes.TRAINER_ID,
            nodes.MODEL_RESOLVER_ID, nodes.EVALUATOR_ID, nodes.PUSHER_ID}


@pytest.fixture(scope="module")
def home(small_movielens, tmp_path_factory):
    """A home after one full, blessed and pushed run, built like `pipeline_home` but owned by
    this module: test_e2e adds runs to the shared session home, and these tests count runs."""
    path = tmp_path_factory.mktemp("inspect_home")
    run_local_pipeline(small_movielens.out_dir, path, "--rmse-upper-bound", "2.0")
    return str(path)


@pytest.fixture()
def store(home):
    return open_store(configs.Paths(home).metadata_path)


def _cli(capsys, *argv):
    """Runs the CLI in-process; returns (exit code, stdout, stderr)."""
    code = inspect_cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _table(text):
    """An aligned table printed by the CLI as a list of {header: cell} dicts."""
    lines = [line for line in text.splitlines() if line.strip()]
    headers = re.split(r"\s{2,}", lines[0].strip())
    return [dict(zip(headers, re.split(r"\s{2,}", line.strip()))) for line in lines[1:]]


def _tfma_overall_metrics(home):
    """The overall candidate metrics, read straight from the Evaluator's output with TFMA."""
    (evaluation_uri,) = glob.glob(os.path.join(
        home, "pipeline_root", nodes.EVALUATOR_ID, "evaluation", "*"))
    for metrics in tfma.load_metrics(evaluation_uri):
        if not metrics.slice_key.single_slice_keys:
            return {kv.key.name: kv.value.double_value.value
                    for kv in metrics.metric_keys_and_values
                    if not kv.key.is_diff and kv.key.model_name in ("", "candidate")}
    raise AssertionError(f"no overall slice in {evaluation_uri}")


def test_runs_lists_one_complete_run_with_every_node(home, store, capsys):
    (run,) = list_runs(store)
    assert run["status"] == COMPLETE
    assert run["failed_node"] is None and run["cached"] == 0 and run["not_run"] == []
    assert {n["node_id"] for n in run["nodes"]} == NODE_IDS
    assert {n["state"] for n in run["nodes"]} == {"COMPLETE"}
    assert run["duration_s"] > 0

    code, out, _ = _cli(capsys, "--home", home, "runs")
    assert code == 0
    assert f"run {run['run_id']}  COMPLETE" in out
    body = out.split("\n", 1)[1]
    rows = {row["NODE"]: row for row in _table(body.split("\n  not run")[0])}
    assert set(rows) == NODE_IDS
    assert all(row["STATE"] == "COMPLETE" for row in rows.values())


def test_models_shows_the_blessed_model_with_tfma_rmse(home, store):
    (model,) = list_models(store)
    expected = _tfma_overall_metrics(home)
    assert model["metrics"][RMSE] == pytest.approx(expected[RMSE], abs=1e-6)
    assert model["metrics"][MAE] == pytest.approx(expected[MAE], abs=1e-6)
    assert model["metrics"][EXAMPLE_COUNT] == expected[EXAMPLE_COUNT] > 0
    assert model["blessed"] is True and model["validation_ok"] is True
    assert model["pushed"] is True
    assert model["baseline_model_id"] is None  # the first model has nothing to compare with
    assert os.path.isdir(os.path.join(model["uri"], "Format-Serving"))


def test_pushed_names_the_serving_folder(home, store, capsys):
    current = pushed_model(store)
    (model,) = list_models(store)
    assert current["pushed"] is True
    assert current["model_id"] == model["model_id"]
    destination = current["destination"]
    assert os.path.dirname(os.path.realpath(destination)) == \
        os.path.realpath(configs.Paths(home).serving_dir)
    assert os.path.isfile(os.path.join(destination, "saved_model.pb"))
    assert current["version"] == os.path.basename(destination.rstrip("/"))

    code, out, _ = _cli(capsys, "--home", home, "pushed")
    assert code == 0 and destination in out and current["model_uri"] in out


def test_lineage_reaches_the_example_gen_input(home, store, small_movielens):
    result = lineage(store)  # default: the pushed model
    (model,) = list_models(store)
    assert result["model"]["id"] == model["model_id"]
    gen = result["example_gen"]
    assert gen["node_id"] == nodes.EXAMPLE_GEN_ID
    assert os.path.realpath(gen["input_base"]) == os.path.realpath(small_movielens.out_dir)
    assert gen["input_patterns"] and ml1m.RATINGS_FILE in list(gen["input_patterns"].values())[0]
    assert result["examples"]["splits"] == [fk.TRAIN_SPLIT, fk.EVAL_SPLIT]
    assert result["schema"]["schema_file"] == configs.schema_path(has_users=True, has_movies=True)
    trainer = result["trainer"]
    assert {k: str(v) for k, v in trainer["hparam_overrides"].items()} == \
        {k: str(v) for k, v in FAST_HPARAMS.items()}
    assert trainer["hparams"]["embedding_dim"] == FAST_HPARAMS["embedding_dim"]
    (evaluation,) = result["evaluations"]
    assert evaluation["blessed"] is True
    assert evaluation["metrics"][RMSE] == model["metrics"][RMSE]
    (push,) = result["pushes"]
    assert push["pushed"] is True and push["destination"] == model["pushed_destination"]


def test_json_matches_the_tables(home, store, capsys):
    code, out, _ = _cli(capsys, "--home", home, "--json", "models")
    assert code == 0
    models = json.loads(out)
    assert models == list_models(store)
    code, out, _ = _cli(capsys, "--home", home, "models")
    assert code == 0
    table, note = out.split("\n\n")
    assert note.strip() == IDS_NOTE
    (row,) = _table(table)
    (model,) = models
    assert row["MODEL"] == str(model["model_id"])
    assert row["RUN"] == model["run_id"]
    assert row["RMSE"] == f"{model['metrics'][RMSE]:.4f}"
    assert row["MAE"] == f"{model['metrics'][MAE]:.4f}"
    assert row["EXAMPLES"] == str(int(model["metrics"][EXAMPLE_COUNT]))
    assert (row["BLESSED"], row["PUSHED"]) == ("yes", "yes")
    assert row["PUSHED TO"] == model["pushed_destination"]

    # The global flags may also follow the command.
    code, out, _ = _cli(capsys, "runs", "--json", "--home", home)
    assert code == 0 and json.loads(out) == list_runs(store)

    code, out, _ = _cli(capsys, "--home", home, "--json")
    summary = json.loads(out)
    assert summary["run"]["eval_rmse"] == model["metrics"][RMSE]
    assert summary["run"]["pushed_path"] == model["pushed_destination"]
    assert summary["pushed"]["model_id"] == model["model_id"]
    code, out, _ = _cli(capsys, "--home", home)
    assert f"{model['metrics'][RMSE]:.4f}" in out
    assert model["pushed_destination"] in out


def test_slices_cover_every_slicing_feature(home, store, capsys):
    result = model_slices(store)
    names = [s["slice"] for s in result["slices"]]
    assert names[0] == OVERALL
    for feature in ("user_activity", "movie_popularity", fk.GENDER, fk.AGE):
        assert any(name.startswith(f"{feature}=") for name in names), feature
    total = result["slices"][0]["metrics"][EXAMPLE_COUNT]
    genders = [s for s in result["slices"] if s["slice"].startswith(f"{fk.GENDER}=")]
    assert sum(s["metrics"][EXAMPLE_COUNT] for s in genders) == total

    code, out, _ = _cli(capsys, "--home", home, "slices", "--model", str(result["model_id"]))
    assert code == 0
    assert [row["SLICE"] for row in _table(out.split("\n", 1)[1])] == names


def test_missing_metadata_exits_2_and_names_the_path(tmp_path, home, capsys):
    missing = tmp_path / "nowhere" / "metadata.sqlite"
    code, out, err = _cli(capsys, "--metadata", str(missing), "runs")
    assert code == 2 and str(missing) in err and out == ""
    empty_home = tmp_path / "empty_home"
    code, _, err = _cli(capsys, "--home", str(empty_home))
    assert code == 2 and configs.Paths(str(empty_home)).metadata_path in err
    assert not empty_home.exists()  # inspecting never creates a store

    code, _, err = _cli(capsys, "--home", home, "lineage", "--model", "999999")
    assert code == 2 and "999999" in err
    code, _, err = _cli(capsys, "--home", home, "artifacts", "--run", "no-such-run")
    assert code == 2 and "no-such-run" in err


def test_artifacts_of_the_run(home, store):
    (run,) = list_runs(store)
    rows = list_artifacts(store, run["run_id"])
    by_type = {}
    for row in rows:
        by_type.setdefault(row["type"], []).append(row)
    # ExampleGen wrote the span; the span resolvers handed on that same artifact.
    (examples,) = [r for r in by_type["Examples"] if r["node_id"] == nodes.EXAMPLE_GEN_ID]
    assert examples["origin"] == "new"
    resolved = [r for r in by_type["Examples"] if r is not examples]
    assert {r["node_id"] for r in resolved} == {nodes.DRIFT_BASELINE_ID, nodes.SPAN_WINDOW_ID}
    assert {r["artifact_id"] for r in resolved} == {examples["artifact_id"]}
    assert examples["splits"] == [fk.TRAIN_SPLIT, fk.EVAL_SPLIT]
    assert examples["rejected_lines"] == 0
    (blessing,) = by_type["ModelBlessing"]
    assert blessing["blessed"] is True
    (pushed,) = by_type["PushedModel"]
    assert pushed["pushed"] is True
    assert all(os.path.isdir(row["uri"]) for row in rows)


def test_summary_of_a_run_stopped_by_data_anomalies(anomalous_home, capsys):
    home = anomalous_home
    store = open_store(configs.Paths(home).metadata_path)
    summary = run_summary(store)
    assert summary["status"] == FAILED
    assert summary["failed_node"] == nodes.ANOMALIES_GATE_ID
    assert fk.RATING in summary["failure"]
    assert summary["model_id"] is None and summary["eval_rmse"] is None
    assert summary["blessed"] is None and summary["pushed_path"] is None
    assert nodes.ANOMALIES_GATE_ID in summary["not_pushed_reason"]
    assert list_models(store) == []
    assert pushed_model(store)["pushed"] is False
    (run,) = list_runs(store)
    assert {nodes.TRAINER_ID, nodes.EVALUATOR_ID, nodes.PUSHER_ID} <= set(run["not_run"])

    code, out, _ = _cli(capsys, "--home", home)
    assert code == 0
    assert f"FAILED at {nodes.ANOMALIES_GATE_ID}" in out
    assert "no model has been pushed" in out


def test_a_model_that_was_not_blessed(unblessed_home, capsys):
    """Nothing pushed: every view says why (the RMSE bound), and lineage says it falls back to
    the latest model."""
    store = open_store(configs.Paths(unblessed_home).metadata_path)
    (model,) = list_models(store)
    assert model["blessed"] is False and model["pushed"] is False
    reason = pushed_model(store)["reason"]
    assert f"model {model['model_id']} was not blessed" in reason
    assert "upper bound 0.01" in reason
    summary = run_summary(store, list_runs(store)[0]["run_id"])
    assert summary["not_pushed_reason"] == reason and summary["blessed"] is False

    result = lineage(store)
    assert result["model"]["id"] == model["model_id"] and result["chosen"] != "pushed"
    code, out, _ = _cli(capsys, "--home", unblessed_home, "lineage")
    assert code == 0
    assert out.splitlines()[0] == \
        f"No model has been pushed: showing the latest model, {model['model_id']}."

    code, out, _ = _cli(capsys, "--home", unblessed_home, "summary", "--run", "no-such-run")
    assert code == 2
