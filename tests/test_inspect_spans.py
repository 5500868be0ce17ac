"""`kiko inspect spans`, the spans and model-over-time readers (kiko.metadata.spans) and the
report's "Model over time" section, over ML Metadata stores built here the way TFX writes them
(TFX's own execution_lib and context_lib; TFMA's own writers for the Evaluator's output), so
no pipeline runs: a sequence of spans with a first span, a passed one, one the data gate
stopped, one it let through with a warning and one whose run ended before the gate."""

import json
import os
import re
import subprocess
import sys
import traceback

import apache_beam as beam
import pytest
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.proto import validation_result_pb2
from tensorflow_model_analysis.writers import eval_config_writer
from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer
from tfx.dsl.compiler import constants
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration.portable.mlmd import context_lib, execution_lib
from tfx.proto.orchestration import execution_result_pb2
from tfx.types import artifact_utils, standard_artifacts

from kiko import report, report_spans
from kiko.components.anomalies_gate import drift
from kiko.components.anomalies_gate.component import (
    VERDICT_DRIFT_WARNED, VERDICT_FIRST_SPAN, VERDICT_PASSED, DataAnomaliesError, DataDriftError,
    SpanVerdict)
from kiko.components.movielens_example_gen.outputs import DATA_QUALITY_PROPERTY
from kiko.metadata import runs
from kiko.metadata.evaluation import MAE, RMSE
from kiko.metadata.spans import (
    NOT_CHECKED, STOPPED, has_span_history, largest_measure, measure_text, model_over_time,
    severity, span_rows)
from kiko.metadata.store import open_store
from kiko.model import features as fk
from kiko.pipeline import configs, nodes
from tests.test_inspect import _cli, _table  # the CLI run in-process, its tables parsed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
State = mlmd_pb2.Execution.State
# What the gate raises for a drifted span (kiko.components.anomalies_gate.component).
DRIFT_MESSAGE = ("span 3 drifted from span 2:\n  rating: Jensen-Shannon divergence from the "
                 "previous span 0.4173, above the threshold 0.05\nthe run stops before training "
                 "(--drift warn lets such a span through)")


def _recorded_traceback(error):
    """The result message TFX's launcher records for an executor that raised `error`: the
    formatted traceback (launcher._build_error_output)."""
    try:
        raise error
    except type(error):
        return "\n".join(traceback.format_exception(*sys.exc_info()))


def _measure(feature, measure, value, threshold, exceeded):
    return {"feature": feature, "measure": measure, "value": value, "threshold": threshold,
            "exceeded": exceeded}


def _measures(jsd, unseen_users, ratio):
    return [_measure(fk.RATING, drift.JSD, jsd, 0.05, jsd > 0.05),
            _measure(fk.USER_ID, drift.UNSEEN, unseen_users, 0.3, unseen_users > 0.3),
            _measure(fk.MOVIE_ID, drift.UNSEEN, 0.01, 0.3, False),
            _measure(drift.EXAMPLES_FEATURE, drift.COUNT_RATIO, ratio, "0.2..5",
                     not 0.2 <= ratio <= 5)]


class StoreBuilder:
    """Writes pipeline runs into a fresh ML Metadata SQLite file as TFX's orchestrator does:
    pipeline, pipeline_run and node contexts, executions with INPUT/OUTPUT events, a failed
    execution's result message."""

    def __init__(self, home):
        self.home = str(home)
        self.root = os.path.join(self.home, "pipeline_root")
        os.makedirs(self.root, exist_ok=True)
        config = mlmd_pb2.ConnectionConfig()
        config.sqlite.filename_uri = configs.Paths(self.home).metadata_path
        config.sqlite.connection_mode = mlmd_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.handle = tfx_metadata.Metadata(config).__enter__()
        self.pipeline = context_lib.register_context_if_not_exists(
            self.handle, constants.PIPELINE_CONTEXT_TYPE_NAME, configs.PIPELINE_NAME)
        self.run_context = None
        self.folders = 0
        self.evaluations = []  # (uri, candidate metrics, baseline metrics or None)

    def start_run(self, run_id):
        self.run_context = context_lib.register_context_if_not_exists(
            self.handle, constants.PIPELINE_RUN_CONTEXT_TYPE_NAME, run_id,
            parent_contexts=[self.pipeline])

    def execute(self, node, inputs=None, outputs=None, state=State.COMPLETE, message=None,
                output_event_type=mlmd_pb2.Event.OUTPUT):
        node_context = context_lib.register_context_if_not_exists(
            self.handle, constants.NODE_CONTEXT_TYPE_NAME, f"{configs.PIPELINE_NAME}.{node}",
            parent_contexts=[self.pipeline])
        execution = execution_lib.prepare_execution(
            self.handle, mlmd_pb2.ExecutionType(name=f"kiko.test.{node}"), state)
        if message is not None:
            execution_lib.set_execution_result(execution_result_pb2.ExecutionResult(
                code=1, result_message=message), execution)
        outputs = outputs or {}
        for key, artifacts in outputs.items():
            for artifact in artifacts:
                artifact.state = "published"
        return execution_lib.put_execution(
            self.handle, execution, [self.pipeline, self.run_context, node_context],
            input_artifacts=inputs or {}, output_artifacts=outputs,
            output_event_type=output_event_type)

    def _artifact(self, cls, node, key):
        artifact = cls()
        self.folders += 1  # TFX numbers the folder by the execution; any unique number will do
        artifact.uri = os.path.join(self.root, node, key, str(self.folders))
        os.makedirs(artifact.uri, exist_ok=True)
        return artifact

    def example_gen(self, span, version, examples, state=State.COMPLETE):
        artifact = self._artifact(standard_artifacts.Examples, nodes.EXAMPLE_GEN_ID, "examples")
        artifact.split_names = artifact_utils.encode_split_names([fk.TRAIN_SPLIT, fk.EVAL_SPLIT])
        artifact.set_int_custom_property("span", span)
        artifact.set_int_custom_property("version", version)
        artifact.set_string_custom_property("input_fingerprint", f"span-{span}-v{version}")
        artifact.set_string_custom_property(DATA_QUALITY_PROPERTY, json.dumps({
            "examples": examples, "bytes_read": examples * 21, "lines_read": examples,
            "rejected_lines": 0}))
        self.execute(nodes.EXAMPLE_GEN_ID, outputs={"examples": [artifact]}, state=state)
        return artifact

    def gate(self, examples, baseline_examples, verdict=None, measures=(), failure=None):
        """A gate that let the span through (a SpanVerdict), or failed with `failure`."""
        inputs = {"examples": [examples], "baseline_examples": list(baseline_examples)}
        if failure is not None:
            self.execute(nodes.ANOMALIES_GATE_ID, inputs, state=State.FAILED, message=failure)
            return None
        out = self._artifact(SpanVerdict, nodes.ANOMALIES_GATE_ID, "verdict")
        baseline = examples_span(baseline_examples[-1]) if baseline_examples else None
        report_ = drift.drift_report(
            examples_span(examples), baseline, examples_count(examples),
            examples_count(baseline_examples[-1]) if baseline_examples else None,
            list(measures))
        for key, value in (("span", examples_span(examples)), ("version", 0),
                           ("examples_id", examples.id), ("statistics_id", 0),
                           ("baseline_span", report_["baseline_span"])):
            out.set_int_custom_property(key, value)
        out.set_string_custom_property("verdict", verdict)
        out.set_string_custom_property("drift", json.dumps(report_))
        self.execute(nodes.ANOMALIES_GATE_ID, inputs, {"verdict": [out]})
        return out

    def train(self, window, base=None, start=None):
        """A Trainer on `window` (after the resolvers), warm started from `base` when given;
        `start` is its metrics.json's "start" record (none written when None)."""
        # A resolver's execution records what it resolved as INTERNAL_OUTPUT (TFX's
        # resolver_node_handler); only the Trainer's INPUT events say what it trained on.
        self.execute(nodes.SPAN_WINDOW_ID, outputs={"examples": list(window)},
                     output_event_type=mlmd_pb2.Event.INTERNAL_OUTPUT)
        self.execute(nodes.BASE_MODEL_RESOLVER_ID, outputs={"model": [base] if base else []},
                     output_event_type=mlmd_pb2.Event.INTERNAL_OUTPUT)
        model = self._artifact(standard_artifacts.Model, nodes.TRAINER_ID, "model")
        model_run = self._artifact(standard_artifacts.ModelRun, nodes.TRAINER_ID, "model_run")
        if start is not None:
            with open(os.path.join(model_run.uri, fk.METRICS_FILE), "w") as f:
                json.dump({"members": [], "start": start}, f)
        inputs = {"examples": list(window), **({"base_model": [base]} if base else {})}
        self.execute(nodes.TRAINER_ID, inputs, {"model": [model], "model_run": [model_run]})
        return model

    def cached_train(self, model, window, base=None):
        """A Trainer served from cache: the same inputs, the same model as output."""
        inputs = {"examples": list(window), **({"base_model": [base]} if base else {})}
        self.execute(nodes.TRAINER_ID, inputs, {"model": [model]}, state=State.CACHED)

    def evaluate(self, examples, model, baseline, candidate_metrics, baseline_metrics,
                 blessed):
        inputs = {"examples": [examples], "model": [model]}
        if baseline is not None:
            inputs["baseline_model"] = [baseline]
        evaluation = self._artifact(standard_artifacts.ModelEvaluation, nodes.EVALUATOR_ID,
                                    "evaluation")
        blessing = self._artifact(standard_artifacts.ModelBlessing, nodes.EVALUATOR_ID,
                                  "blessing")
        blessing.set_int_custom_property("blessed", int(blessed))
        blessing.set_int_custom_property("current_model_id", model.id)  # as the Evaluator does
        self.evaluations.append((evaluation.uri, candidate_metrics,
                                 baseline_metrics if baseline is not None else None))
        self.execute(nodes.EVALUATOR_ID, inputs,
                     {"evaluation": [evaluation], "blessing": [blessing]})
        return blessing

    def push(self, model, blessing, pushed):
        out = self._artifact(standard_artifacts.PushedModel, nodes.PUSHER_ID, "pushed_model")
        out.set_int_custom_property("pushed", int(pushed))
        if pushed:
            out.set_string_custom_property("pushed_destination",
                                           os.path.join(self.home, "serving", str(model.id)))
        self.execute(nodes.PUSHER_ID, {"model": [model], "model_blessing": [blessing]},
                     {"pushed_model": [out]})

    def write_evaluations(self):
        """The Evaluator's output of every evaluation, written by TFMA's own writers."""
        with beam.Pipeline() as pipeline:
            for i, (uri, candidate, baseline) in enumerate(self.evaluations):
                names = [tfma.CANDIDATE_KEY, tfma.BASELINE_KEY] if baseline else [""]
                config = tfma.EvalConfig(model_specs=[
                    tfma.ModelSpec(name=name, is_baseline=name == tfma.BASELINE_KEY)
                    for name in names])
                metrics = {}
                for name, values in zip(names, (candidate, baseline)):
                    metrics.update({metric_types.MetricKey(key, model_name=name): value
                                    for key, value in values.items()})
                evaluation = {
                    tfma.METRICS_KEY: pipeline | f"Metrics{i}" >> beam.Create(
                        [((), metrics)]),
                    tfma.VALIDATIONS_KEY: pipeline | f"Validations{i}" >> beam.Create(
                        [validation_result_pb2.ValidationResult(validation_ok=True)])}
                _ = evaluation | f"Config{i}" >> eval_config_writer.EvalConfigWriter(
                    uri, config, model_locations={n: n for n in names}).ptransform
                _ = evaluation | f"Write{i}" >> \
                    metrics_plots_and_validations_writer.MetricsPlotsAndValidationsWriter(
                        {key: os.path.join(uri, key)
                         for key in (tfma.METRICS_KEY, tfma.VALIDATIONS_KEY)},
                        config).ptransform


def examples_span(examples):
    return examples.get_int_custom_property("span")


def examples_count(examples):
    return json.loads(examples.get_string_custom_property(DATA_QUALITY_PROPERTY))["examples"]


def _scores(rmse, mae, count):
    return {RMSE: rmse, MAE: mae, "example_count": float(count)}


COLD_START = {"mode": "cold", "reason": "no blessed model trained before this data", "base_model": None,
              "warm_chain": 0, "kept_users": None, "kept_movies": None, "new_users": None,
              "new_movies": None, "members": {"mf": "fresh", "item_autorec": "fresh"}}


def warm_start(base, chain):
    """metrics.json's record of a warm start from `base` (a Model artifact)."""
    return {"mode": "warm", "reason": f"warm start from the blessed model {base.uri}: kept 140 "
                                      "of 150 users and 190 of 200 movies; 12 new users, 3 new "
                                      "movies",
            "base_model": base.uri, "warm_chain": chain, "kept_users": 140 / 150,
            "kept_movies": 0.95, "new_users": 12, "new_movies": 3,
            "members": {"mf": "warm", "item_autorec": "fresh"}}


def _first_run(b, span, scores):
    """Run 1 on `span` (1000 examples): the first span, trained (cold), blessed and pushed."""
    b.start_run("run-1")
    examples = b.example_gen(span, 0, 1000)
    b.gate(examples, [], VERDICT_FIRST_SPAN)
    model = b.train([examples], start=COLD_START)
    b.push(model, b.evaluate(examples, model, None, scores, None, True), True)
    return examples, model


@pytest.fixture(scope="module")
def spans_home(tmp_path_factory):
    """Five runs over spans 1..5: a first span (trained cold, blessed, pushed); span 2 passed
    (window 1-2, warm from run 1's model, blessed over the served model, pushed); span 3
    stopped by drift; span 4 drifted, let through with a warning (window 2 and 4, warm from run
    2's model; worse than the served model: not blessed); span 5's run failed at
    StatisticsGen, before the gate."""
    b = StoreBuilder(tmp_path_factory.mktemp("spans_home"))
    e1, m1 = _first_run(b, 1, _scores(0.95, 0.75, 100))

    b.start_run("run-2")
    e2 = b.example_gen(2, 0, 1100)
    b.gate(e2, [e1], VERDICT_PASSED, _measures(0.004, 0.12, 1.1))
    m2 = b.train([e1, e2], base=m1, start=warm_start(m1, 1))
    b.push(m2, b.evaluate(e2, m2, m1, _scores(0.90, 0.71, 110), _scores(0.97, 0.77, 110),
                          True), True)

    b.start_run("run-3")
    e3 = b.example_gen(3, 0, 900)
    b.gate(e3, [e1, e2], failure=_recorded_traceback(DataDriftError(DRIFT_MESSAGE)))

    b.start_run("run-4")
    e4 = b.example_gen(4, 0, 1200)
    b.gate(e4, [e1, e2], VERDICT_DRIFT_WARNED, _measures(0.02, 0.9, 1.09))
    m4 = b.train([e2, e4], base=m2, start=warm_start(m2, 2))
    b.push(m4, b.evaluate(e4, m4, m2, _scores(1.10, 0.88, 120), _scores(1.02, 0.81, 120),
                          False), False)

    b.start_run("run-5")
    b.example_gen(5, 0, 1000)
    b.execute(nodes.STATISTICS_GEN_ID, state=State.FAILED, message="statistics failed")
    b.write_evaluations()
    return b.home


@pytest.fixture(scope="module")
def single_span_home(tmp_path_factory):
    """One run on one data set (span 0): trained, blessed and pushed."""
    b = StoreBuilder(tmp_path_factory.mktemp("single_span_home"))
    _first_run(b, 0, _scores(0.93, 0.74, 100))
    b.write_evaluations()
    return b.home


def _store(home):
    return open_store(configs.Paths(home).metadata_path)


def test_span_rows_give_each_span_its_verdict_drift_and_training_runs(spans_home):
    rows = span_rows(_store(spans_home))
    assert [(r["span"], r["version"]) for r in rows] == [(5, 0), (4, 0), (3, 0), (2, 0), (1, 0)]
    by_span = {r["span"]: r for r in rows}
    assert [by_span[s]["verdict"] for s in (1, 2, 3, 4, 5)] == [
        VERDICT_FIRST_SPAN, VERDICT_PASSED, STOPPED, VERDICT_DRIFT_WARNED, NOT_CHECKED]
    assert [by_span[s]["examples"] for s in (1, 2, 3, 4, 5)] == [1000, 1100, 900, 1200, 1000]
    assert by_span[2]["bytes_read"] == 1100 * 21
    assert {s: by_span[s]["run_id"] for s in by_span} == {s: f"run-{s}" for s in by_span}
    # The training windows: span 1 in runs 1-2, span 2 in runs 2 and 4, span 4 in run 4.
    assert {s: by_span[s]["trained_in_runs"] for s in by_span} == {
        1: ["run-1", "run-2"], 2: ["run-2", "run-4"], 3: [], 4: ["run-4"], 5: []}
    # How each of those trainings started: run 1 cold, runs 2 and 4 warm.
    assert {s: by_span[s]["training_starts"] for s in by_span} == {
        1: ["cold", "warm"], 2: ["warm", "warm"], 3: [], 4: ["warm"], 5: []}
    assert by_span[1]["drift"] == [] and by_span[1]["baseline_span"] == -1
    assert by_span[2]["baseline_span"] == 1
    assert [m["value"] for m in by_span[4]["drift"]] == [0.02, 0.9, 0.01, 1.09]
    # The gate's whole message (every measure it stopped on), in one line.
    assert by_span[3]["failure"] == (
        "span 3 drifted from span 2: rating: Jensen-Shannon divergence from the previous span "
        "0.4173, above the threshold 0.05; the run stops before training (--drift warn lets "
        "such a span through)")
    assert by_span[3]["stopped_in_run"] == "run-3"
    assert by_span[3]["drift"] == [] and by_span[5]["failure"] is None


def test_largest_measure_is_the_exceeded_one_else_the_nearest_its_threshold():
    warned = _measures(0.02, 0.9, 1.09)
    assert largest_measure(warned)["feature"] == fk.USER_ID
    assert measure_text(largest_measure(warned)) == "user_id unseen 0.9000 > 0.3"
    calm = _measures(0.04, 0.12, 1.1)  # 0.04 is 80 % of its threshold, 0.12 is 40 %
    assert largest_measure(calm)["feature"] == fk.RATING
    assert measure_text(largest_measure(calm)) == "rating JSD 0.0400 <= 0.05"
    shrunk = _measures(0.001, 0.01, 0.19)  # below the count range's low end
    assert largest_measure(shrunk)["feature"] == drift.EXAMPLES_FEATURE
    assert measure_text(largest_measure(shrunk)) == "(examples) count ratio 0.1900 outside 0.2..5"
    assert severity(_measure("x", drift.COUNT_RATIO, 10.0, "0.2..5", True)) == 2.0
    assert largest_measure([]) is None


def test_a_gate_failure_keeps_every_anomaly_in_one_line():
    """What `kiko inspect` shows of a gate that stopped a run: all of its error, not the
    traceback's last line (the drift error's last line names no measure)."""
    recorded = _recorded_traceback(DataAnomaliesError(
        "data anomalies (see /a); the run stops before training:\n  [train] rating: Out-of-range"
        " values -- high 7\n  [eval] movie_id: Unexpected values -- 99999"))
    assert runs._gate_error(recorded) == (
        "data anomalies (see /a); the run stops before training: [train] rating: Out-of-range "
        "values -- high 7; [eval] movie_id: Unexpected values -- 99999")
    assert runs._gate_error(_recorded_traceback(ValueError("other\nlines"))) is None


def test_inspect_spans_prints_the_table_and_json(spans_home, capsys):
    code, out, _ = _cli(capsys, "--home", spans_home, "spans")
    assert code == 0
    table_text, *notes = out.split("\n\n")
    rows = {row["SPAN"]: row for row in _table(table_text)}
    assert list(rows) == ["5", "4", "3", "2", "1"]
    assert rows["4"]["VERDICT"] == VERDICT_DRIFT_WARNED
    assert rows["4"]["LARGEST DRIFT MEASURE"] == "user_id unseen 0.9000 > 0.3"
    assert rows["2"]["LARGEST DRIFT MEASURE"] == "user_id unseen 0.1200 <= 0.3"
    assert rows["1"]["LARGEST DRIFT MEASURE"] == "-"
    assert rows["3"]["VERDICT"] == STOPPED and rows["5"]["VERDICT"] == NOT_CHECKED
    assert rows["2"]["TRAINED IN"] == "run-2 (warm), run-4 (warm)"
    assert rows["1"]["TRAINED IN"] == "run-1 (cold), run-2 (warm)"
    assert rows["3"]["TRAINED IN"] == "-"
    assert rows["2"]["EXAMPLES"] == "1100"
    stopped = [n for n in notes if n.startswith("span 3 ")]
    assert stopped and "stopped in run run-3" in stopped[0]
    assert "rating: Jensen-Shannon divergence" in stopped[0]

    code, out, _ = _cli(capsys, "--home", spans_home, "spans", "--json")
    assert code == 0 and json.loads(out) == span_rows(_store(spans_home))


def test_inspect_spans_of_an_empty_store_and_help(tmp_path, capsys):
    StoreBuilder(tmp_path / "empty")  # a store that has seen no run
    code, out, _ = _cli(capsys, "--home", str(tmp_path / "empty"), "spans")
    assert code == 0 and out.strip() == "no spans ingested"
    probe = ("import sys\nfrom kiko.inspect_cli import main\ntry:\n    main(sys.argv[1:])\n"
             "except SystemExit:\n    pass\nprint('tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe, "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = re.search(r"\n    spans\s+(.+?)\n(\s{6,}.+\n)*", result.stdout)
    assert listed and "drift" in listed.group(0)
    assert result.stdout.splitlines()[-1] == "False"


def test_model_over_time_scores_each_candidate_and_the_served_model(spans_home):
    rows = model_over_time(_store(spans_home))
    assert [(r["run_id"], r["span"]) for r in rows] == [("run-1", 1), ("run-2", 2),
                                                        ("run-4", 4)]
    first, second, warned = rows
    assert (first["rmse"], first["mae"]) == (0.95, 0.75)
    assert first["baseline_model_id"] is None and first["baseline_rmse"] is None
    assert (second["rmse"], second["baseline_rmse"], second["baseline_mae"]) == (0.90, 0.97,
                                                                                0.77)
    assert second["baseline_model_id"] == first["model_id"]
    assert (warned["rmse"], warned["baseline_rmse"]) == (1.10, 1.02)
    assert [r["blessed"] for r in rows] == [True, True, False]
    assert [r["pushed"] for r in rows] == [True, True, False]
    assert [r["eval_examples"] for r in rows] == [100, 110, 120]
    assert [r["span_examples"] for r in rows] == [1000, 1100, 1200]
    assert not any(r["metrics_error"] for r in rows)
    # Each candidate's start, with the id of the model it warm started from.
    assert [(r["start"]["mode"], r["start"]["base_model_id"], r["start"]["warm_chain"])
            for r in rows] == [("cold", None, 0), ("warm", first["model_id"], 1),
                               ("warm", second["model_id"], 2)]


def test_report_shows_the_model_over_time(spans_home, tmp_path):
    page = report.render(report.gather(_store(spans_home)))
    assert "<h2>Model over time</h2>" in page
    section = page.split("<h2>Model over time</h2>", 1)[1]
    evaluations, spans = [[[c.strip() for c in re.findall(r"<td>([^<]*)</td>", row)]
                           for row in re.findall(r"<tr>(<td>.*?)</tr>", table, re.S)]
                          for table in re.findall(r"<table>(.*?)</table>", section, re.S)]
    assert [(c[0], c[1], c[5], c[8], c[10]) for c in evaluations] == [
        ("run-1", "1", "0.9500", "-", "yes"), ("run-2", "2", "0.9000", "0.9700", "yes"),
        ("run-4", "4", "1.1000", "1.0200", "no")]
    models = [c[4] for c in evaluations]
    assert [c[12] for c in evaluations] == [
        "cold: no blessed model trained before this data", f"warm from model {models[0]}",
        f"warm from model {models[1]} (2 warm starts in a row)"]
    assert [c[:5] for c in spans] == [
        ["1", "0", "1000", "21000", VERDICT_FIRST_SPAN], ["2", "0", "1100", "23100", "passed"],
        ["3", "0", "900", "18900", STOPPED], ["4", "0", "1200", "25200", "drift_warned"],
        ["5", "0", "1000", "21000", NOT_CHECKED]]
    assert spans[3][9] == "0.9000 / 0.3 exceeded"  # user_id unseen of span 4
    assert spans[0][7] == "run-1 (cold), run-2 (warm)"  # trained in
    assert "Span 3 version 0 stopped in run run-3" in section
    assert len(re.findall(r'src="data:image/png;base64,', section)) == 1


def test_a_single_data_set_gets_no_model_over_time(single_span_home):
    store = _store(single_span_home)
    rows = span_rows(store)
    assert [(r["span"], r["verdict"]) for r in rows] == [(0, VERDICT_FIRST_SPAN)]
    assert not has_span_history(rows)
    assert report_spans.gather(store) is None
    page = report.render(report.gather(store))
    assert "Model over time" not in page and "<h2>Evaluation (TFMA, eval split)</h2>" in page
    assert has_span_history([{"span": 3}])  # one span, but not the first data set


def test_each_run_tells_how_its_training_started(spans_home, capsys):
    store = _store(spans_home)
    models = [m.id for m in store.models()]
    summary = runs.run_summary(store, "run-2")
    assert (summary["start"]["mode"], summary["start"]["base_model_id"]) == ("warm", models[0])
    code, out, _ = _cli(capsys, "--home", spans_home, "summary", "--run", "run-2")
    (line,) = [line for line in out.splitlines() if line.split()[:1] == ["start"]]
    assert line.split(None, 1)[1] == (f"warm from model {models[0]}: kept 140 of 150 users and "
                                      "190 of 200 movies; 12 new users, 3 new movies")
    code, out, _ = _cli(capsys, "--home", spans_home, "summary", "--run", "run-1")
    assert re.search(r"^  start +cold: no blessed model trained before this data$", out, re.M)
    code, out, _ = _cli(capsys, "--home", spans_home, "lineage", "--model", str(models[2]))
    assert code == 0 and re.search(
        rf"^ +start: warm from model {models[1]} \(2 warm starts in a row\): kept 140", out, re.M)
    code, out, _ = _cli(capsys, "--home", spans_home, "summary", "--run", "run-2", "--json")
    assert json.loads(out)["run"]["start"]["kept_movies"] == 0.95

    page = report.render(report.gather(store, "run-2"))
    training = page.split("<h2>Training</h2>", 1)[1].split("</section>", 1)[0]
    cells = {k.strip(): v.strip() for k, v in re.findall(
        r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", training)}
    assert cells["start"].startswith(f"warm from model {models[0]}: kept 140 of 150 users")
    assert cells["users of the base model still in the window"] == "93.3%"
    assert (cells["users new to the base model"], cells["warm starts in a row"]) == ("12", "1")
    assert (cells["member mf"], cells["member item_autorec"]) == ("warm", "fresh")


def test_start_text_is_safe_for_a_terminal_and_reads_older_models():
    from kiko.metadata.training import START_WARM, start_text, training_start
    from kiko.model import warm_start as model_warm_start
    from kiko.summary import summary_lines

    assert START_WARM == model_warm_start.START_WARM
    assert training_start({"members": []}) is None  # a model made before warm starts
    assert training_start(None) is None
    cold = training_start({"start": dict(COLD_START, reason="hyperparameters changed: "
                                                          "embedding_dim 32 -> 16")})
    assert start_text(cold) == "cold: hyperparameters changed: embedding_dim 32 -> 16"
    run = dict.fromkeys(("run_id", "started", "duration_s", "failed_node", "failure",
                         "model_id", "eval_rmse", "eval_mae", "eval_example_count", "blessed",
                         "pushed_path", "not_pushed_reason"))
    run.update(status="COMPLETE", cached=0, start=dict(cold, reason="bad \x1b[2J\x07 path"))
    (line,) = [line for line in summary_lines(run) if line.split()[0] == "start"]
    assert line.split(None, 1)[1] == "cold: bad \\x1b[2J\\x07 path"
    run["start"] = None
    assert not [line for line in summary_lines(run) if line.split()[0] == "start"]
