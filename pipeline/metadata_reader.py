"""What a pipeline home's ML Metadata records: runs, artifacts, models, evaluations, pushes and
lineage, and why a run pushed nothing. Read through ML Metadata's, TFX's and TFMA's own APIs
(filter queries, `execution_lib`, `tfma.load_eval_result`); every public function returns plain
dicts and lists, which is what `kiko inspect --json` prints and what `kiko report` draws.

Ids are ML Metadata ids. An artifact's folder is named after the id of the *execution* that
wrote it (TFX's layout), so Model 11 may live in `Trainer/model/15`.
"""

import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

import datetime
import json
import os
import re
from typing import Any, Dict, List, Optional

from google.protobuf import json_format
from ml_metadata import metadata_store as mlmd
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
from tfx.dsl.compiler import constants
from tfx.orchestration import data_types_utils
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration.portable.mlmd import artifact_lib, execution_lib
from tfx.types import artifact_utils
from tfx.types import standard_artifacts  # noqa: F401  (the classes artifact_lib builds)

from components.movielens_example_gen.spec import DATA_QUALITY_PROPERTY
from kiko_model import eval_metrics
from kiko_model import features as fk
from kiko_model.hparams import TRAINER_HPARAMS_KEY
from pipeline import configs

# Run statuses.
COMPLETE, FAILED, RUNNING, NO_RUNS = "COMPLETE", "FAILED", "RUNNING", "NO RUNS"
# TFMA metric names as the Evaluator records them.
RMSE, MSE, MAE = eval_metrics.RMSE_NAME, eval_metrics.MSE_NAME, eval_metrics.MAE_NAME
EXAMPLE_COUNT = "example_count"
OVERALL = "overall"
# Pipeline order of the nodes; nodes not named here follow.
NODE_ORDER = (fk.EXAMPLE_GEN_ID, fk.STATISTICS_GEN_ID, fk.SCHEMA_GEN_ID,
              fk.EXAMPLE_VALIDATOR_ID, fk.ANOMALIES_GATE_ID, fk.TRAINER_ID,
              fk.MODEL_RESOLVER_ID, fk.EVALUATOR_ID, fk.PUSHER_ID)
_MAX_LISTED_FAILURES = 5
_State = mlmd_pb2.Execution.State


class StoreError(RuntimeError):
    """The metadata file exists but is not a readable ML Metadata database."""


class Store:
    """A read-only ML Metadata store of one pipeline, with the TFX handle `execution_lib` uses."""

    def __init__(self, metadata_path: str, pipeline_name: str = configs.PIPELINE_NAME):
        path = os.path.abspath(metadata_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no ML Metadata database at {path}")
        config = mlmd_pb2.ConnectionConfig()
        config.sqlite.filename_uri = path
        config.sqlite.connection_mode = mlmd_pb2.SqliteMetadataSourceConfig.READONLY
        try:
            mlmd.MetadataStore(config)  # fails fast, where the TFX handle would retry
        except RuntimeError as error:
            reason = str(error).rsplit(" query:", 1)[0]
            raise StoreError(f"{path} is not a readable ML Metadata database ({reason})") from error
        self.handle = tfx_metadata.Metadata(config).__enter__()
        self.mlmd = self.handle.store
        self.pipeline_name = pipeline_name
        self._node_of: Optional[Dict[int, str]] = None
        self._run_of: Dict[int, Optional[str]] = {}

    def runs(self) -> List[mlmd_pb2.Context]:
        """Every pipeline run context, oldest first."""
        return sorted(self.mlmd.get_contexts_by_type(constants.PIPELINE_RUN_CONTEXT_TYPE_NAME),
                      key=lambda c: (c.create_time_since_epoch, c.id))

    def run(self, run_id: Optional[str] = None) -> Optional[mlmd_pb2.Context]:
        """The run named `run_id` (LookupError if none), or the latest (None if no run)."""
        if run_id is None:
            runs = self.runs()
            return runs[-1] if runs else None
        found = self.mlmd.get_context_by_type_and_name(
            constants.PIPELINE_RUN_CONTEXT_TYPE_NAME, run_id)
        if found is None:
            raise LookupError(f"no pipeline run {run_id!r} (see `kiko inspect runs`)")
        return found

    def executions(self, node: Optional[str] = None, run: Optional[str] = None,
                   input_of: Optional[int] = None,
                   output_of: Optional[int] = None) -> List[mlmd_pb2.Execution]:
        """Executions (oldest first) of a node, in a run, that read or wrote an artifact."""
        clauses = []
        if node is not None:
            clauses += [f'contexts_n.type = "{constants.NODE_CONTEXT_TYPE_NAME}"',
                        f'contexts_n.name = "{self.pipeline_name}.{node}"']
        if run is not None:
            clauses += [f'contexts_r.type = "{constants.PIPELINE_RUN_CONTEXT_TYPE_NAME}"',
                        f'contexts_r.name = "{run}"']
        for alias, artifact_id, kind in (("i", input_of, "INPUT"), ("o", output_of, "OUTPUT")):
            if artifact_id is not None:
                clauses += [f"events_{alias}.artifact_id = {int(artifact_id)}",
                            f"events_{alias}.type = {kind}"]
        options = mlmd.ListOptions(filter_query=" AND ".join(clauses) or None,
                                   order_by=mlmd.OrderByField.ID, is_asc=True)
        return list(self.mlmd.get_executions(list_options=options))

    def node_of(self, execution_id: int) -> str:
        if self._node_of is None:
            prefix = self.pipeline_name + "."
            self._node_of = {}
            for context in self.mlmd.get_contexts_by_type(constants.NODE_CONTEXT_TYPE_NAME):
                node = context.name[len(prefix):] if context.name.startswith(prefix) \
                    else context.name
                for execution in self.mlmd.get_executions_by_context(context.id):
                    self._node_of[execution.id] = node
        return self._node_of.get(execution_id, "?")

    def node_ids(self) -> List[str]:
        self.node_of(0)
        return _in_node_order(self._node_of.values())

    def run_of(self, execution_id: int) -> Optional[str]:
        if execution_id not in self._run_of:
            runs = [c.name for c in self.mlmd.get_contexts_by_execution(execution_id)
                    if c.type == constants.PIPELINE_RUN_CONTEXT_TYPE_NAME]
            self._run_of[execution_id] = runs[0] if runs else None
        return self._run_of[execution_id]

    def inputs(self, execution_id: int) -> Dict[str, list]:
        return execution_lib.get_input_artifacts(self.handle, execution_id)

    def outputs(self, execution_id: int) -> Dict[str, list]:
        return execution_lib.get_output_artifacts(self.handle, execution_id)

    def artifact(self, artifact_id: int):
        try:
            return artifact_lib.get_artifacts_by_ids(self.handle, [artifact_id])[0]
        except ValueError:
            return None

    def artifacts(self, filter_query: str) -> list:
        """TFX artifacts matching an ML Metadata filter query, oldest first."""
        found = self.mlmd.get_artifacts(list_options=mlmd.ListOptions(
            filter_query=filter_query, order_by=mlmd.OrderByField.ID, is_asc=True))
        return list(artifact_lib.get_artifacts_by_ids(self.handle, [a.id for a in found])) \
            if found else []

    def producer(self, artifact_id: int) -> Optional[mlmd_pb2.Execution]:
        """The execution that wrote the artifact (later, cached executions only reuse it)."""
        writers = self.executions(output_of=artifact_id)
        return writers[0] if writers else None


def open_store(metadata_path: str) -> Store:
    """A read-only store on an existing ML Metadata file (never creates one)."""
    return Store(metadata_path)


# ---------------------------------------------------------------------------------------------
# Small helpers.


def _time(ms: int) -> Optional[str]:
    if not ms:
        return None
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return moment.astimezone().isoformat(sep=" ", timespec="seconds")


def _duration_s(executions) -> Optional[float]:
    if not executions:
        return None
    return round((max(x.last_update_time_since_epoch for x in executions)
                  - min(x.create_time_since_epoch for x in executions)) / 1000, 3)


def _in_node_order(node_ids) -> List[str]:
    unique = list(dict.fromkeys(node_ids))
    return [n for n in NODE_ORDER if n in unique] + [n for n in unique if n not in NODE_ORDER]


def _properties(execution: mlmd_pb2.Execution) -> Dict[str, Any]:
    return data_types_utils.build_value_dict(execution.custom_properties)


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _first(artifacts: Dict[str, list], key: str):
    found = artifacts.get(key) or []
    return found[-1] if found else None


def _custom(artifact, name: str, default: Any = None) -> Any:
    if artifact is None or not artifact.has_custom_property(name):
        return default
    return artifact.get_custom_property(name)


def read_json_file(path: str) -> Any:
    """A JSON file's content, None when missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def data_quality(examples) -> Optional[Dict[str, Any]]:
    """The ExampleGen's data-quality record of an Examples artifact (None when absent)."""
    record = _json(_custom(examples, DATA_QUALITY_PROPERTY))
    return record if isinstance(record, dict) else None


# ---------------------------------------------------------------------------------------------
# Runs and artifacts.


def _successful(execution) -> bool:
    return execution_lib.is_execution_successful(execution)


def _failed(execution) -> bool:
    return execution_lib.is_execution_failed(execution) or \
        execution_lib.is_execution_canceled(execution)


def _run_record(store: Store, run: mlmd_pb2.Context) -> Dict[str, Any]:
    executions = sorted(store.mlmd.get_executions_by_context(run.id), key=lambda x: x.id)
    by_node = {store.node_of(x.id): x for x in executions}
    nodes = [{"node_id": node, "state": _State.Name(x.last_known_state), "execution_id": x.id,
              "started": _time(x.create_time_since_epoch), "duration_s": _duration_s([x])}
             for node, x in ((n, by_node[n]) for n in _in_node_order(by_node))]
    failed = [n["node_id"] for n in nodes if _failed(by_node[n["node_id"]])]
    if failed:
        status = FAILED
    elif not executions or not all(_successful(x) for x in executions):
        status = RUNNING  # still running, or interrupted
    else:
        status = COMPLETE
    not_run = [] if status == COMPLETE else [
        n for n in _in_node_order(list(NODE_ORDER) + store.node_ids()) if n not in by_node]
    return {
        "run_id": run.name, "status": status, "executions": len(executions),
        "cached": sum(x.last_known_state == _State.CACHED for x in executions),
        "started": _time(min((x.create_time_since_epoch for x in executions), default=0)),
        "duration_s": _duration_s(executions),
        "failed_node": failed[0] if failed else None, "nodes": nodes, "not_run": not_run,
    }


def list_runs(store: Store) -> List[Dict[str, Any]]:
    """Every pipeline run, oldest first: status, cache use, timing and each node's state; for a
    run that did not complete, `not_run` names the pipeline nodes it never reached."""
    return [_run_record(store, run) for run in store.runs()]


def _artifact_details(artifact) -> Dict[str, Any]:
    """The type-specific facts worth a glance: splits, rejected lines, blessed, pushed."""
    details: Dict[str, Any] = {}
    if "split_names" in (artifact.PROPERTIES or {}):
        details["splits"] = artifact_utils.decode_split_names(artifact.split_names)
    if artifact.type_name == "Examples":
        details["rejected_lines"] = _custom(artifact, "rejected_lines")
    elif artifact.type_name == "ModelBlessing":
        details["blessed"] = bool(_custom(artifact, "blessed", 0))
        details["model_id"] = _custom(artifact, "current_model_id")
    elif artifact.type_name == "PushedModel":
        details["pushed"] = bool(_custom(artifact, "pushed", 0))
        if details["pushed"]:
            details["destination"] = _custom(artifact, "pushed_destination")
    return details


def _origin(execution, artifact) -> str:
    """new (written by this execution), cache (reused from an earlier run) or resolved."""
    if artifact.mlmd_artifact.create_time_since_epoch >= execution.create_time_since_epoch:
        return "new"
    return "cache" if execution.last_known_state == _State.CACHED else "resolved"


def list_artifacts(store: Store, run_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """The artifacts each node output per run (every run, or `run_id`: LookupError if unknown)."""
    runs = [store.run(run_id)] if run_id is not None else store.runs()
    rows = []
    for run in runs:
        by_node = {store.node_of(x.id): x for x in store.executions(run=run.name)}
        for node in _in_node_order(by_node):
            execution = by_node[node]
            for key, artifacts in sorted(store.outputs(execution.id).items()):
                for artifact in sorted(artifacts, key=lambda a: a.id):
                    rows.append({
                        "run_id": run.name, "node_id": node, "execution_id": execution.id,
                        "key": key, "type": artifact.type_name, "artifact_id": artifact.id,
                        "state": mlmd_pb2.Artifact.State.Name(artifact.mlmd_artifact.state),
                        "uri": artifact.uri,
                        "origin": _origin(execution, artifact), **_artifact_details(artifact)})
    return rows


# ---------------------------------------------------------------------------------------------
# Evaluations (TFMA).


def _slice_name(slice_key) -> str:
    """'overall', or 'feature=value[, feature=value]' for a TFMA slice key tuple."""
    return ", ".join(f"{column}={value}" for column, value in slice_key) or OVERALL


def _slice_metrics(result) -> Dict[str, Dict[str, float]]:
    """slice name -> metric -> value of a tfma.EvalResult (diffs against the baseline left out)."""
    by_slice = {}
    for slice_key, outputs in result.slicing_metrics:
        values = outputs.get("", {}).get("", {})
        by_slice[_slice_name(slice_key)] = {
            name: value["doubleValue"] for name, value in values.items()
            if "doubleValue" in value and not name.endswith("_diff")}
    return by_slice


def _slice_order(config) -> Any:
    columns = list(dict.fromkeys(k for spec in config.slicing_specs for k in spec.feature_keys))

    def key(name: str):
        if name == OVERALL:
            return (0, 0, 0.0, "")
        column, _, value = name.partition("=")
        number = re.match(r"-?\d+(\.\d+)?", value)
        return (1, columns.index(column) if column in columns else len(columns),
                float(number.group()) if number else float("inf"), value)
    return key


def _thresholds(config) -> Dict[str, float]:
    """The overall-slice value bound and allowed change of the EvalConfig's gated metric."""
    found: Dict[str, float] = {}
    for spec in config.metrics_specs:
        for metric in spec.metrics:
            thresholds = [metric.threshold] if metric.HasField("threshold") else []
            thresholds += [t.threshold for t in metric.per_slice_thresholds]
            for threshold in thresholds:
                if threshold.value_threshold.HasField("upper_bound"):
                    found["rmse_upper_bound"] = threshold.value_threshold.upper_bound.value
                if threshold.change_threshold.HasField("absolute"):
                    found["max_rmse_increase"] = threshold.change_threshold.absolute.value
    return found


def _failure(per_slice_name: str, failure) -> Dict[str, Any]:
    threshold = failure.metric_threshold
    limits = {}
    if threshold.value_threshold.HasField("upper_bound"):
        limits["upper_bound"] = threshold.value_threshold.upper_bound.value
    if threshold.change_threshold.HasField("absolute"):
        limits["max_change"] = threshold.change_threshold.absolute.value
    return {"slice": per_slice_name, "metric": failure.metric_key.name,
            "is_change": failure.metric_key.is_diff,
            "value": failure.metric_value.double_value.value, "threshold": limits,
            "message": failure.message}


def evaluation(store: Store, evaluator: mlmd_pb2.Execution,
               with_slices: bool = False) -> Dict[str, Any]:
    """What one Evaluator execution found: overall candidate (and baseline) metrics, thresholds,
    validation failures and the blessing; `with_slices` adds every slice's metrics."""
    import tensorflow_model_analysis as tfma

    inputs, outputs = store.inputs(evaluator.id), store.outputs(evaluator.id)
    candidate, baseline = _first(inputs, "model"), _first(inputs, "baseline_model")
    result_artifact, blessing = _first(outputs, "evaluation"), _first(outputs, "blessing")
    config = json_format.Parse(_properties(evaluator).get("eval_config") or "{}",
                               tfma.EvalConfig(), ignore_unknown_fields=True)
    info: Dict[str, Any] = {
        "evaluator_execution_id": evaluator.id, "run_id": store.run_of(evaluator.id),
        "state": _State.Name(evaluator.last_known_state),
        "model_id": candidate.id if candidate else None,
        "baseline_model_id": baseline.id if baseline else None,
        "evaluation_id": result_artifact.id if result_artifact else None,
        "evaluation_uri": result_artifact.uri if result_artifact else None,
        "metrics": None, "baseline_metrics": None, "validation_ok": None,
        "validation_failures": [], "thresholds": _thresholds(config),
        "blessing_id": blessing.id if blessing else None,
        "blessed": bool(_custom(blessing, "blessed", 0)) if blessing else None,
    }
    if result_artifact is None or not _successful(evaluator):
        return info
    order = _slice_order(config)
    try:
        # With a baseline the Evaluator names the two models (TFMA's candidate/baseline keys).
        slices = _slice_metrics(tfma.load_eval_result(
            result_artifact.uri, model_name=tfma.CANDIDATE_KEY if baseline else None))
        base = _slice_metrics(tfma.load_eval_result(
            result_artifact.uri, model_name=tfma.BASELINE_KEY)) if baseline else {}
        info["metrics"], info["baseline_metrics"] = slices.get(OVERALL), base.get(OVERALL)
        if with_slices:
            info["slices"] = [{"slice": name, "metrics": slices[name],
                               "baseline_metrics": base.get(name)}
                              for name in sorted(slices, key=order)]
        validation = tfma.load_validation_result(result_artifact.uri)
        info["validation_ok"] = validation.validation_ok
        failures = [_failure(_slice_name(tfma.slicer.deserialize_slice_key(v.slice_key)), f)
                    for v in validation.metric_validations_per_slice for f in v.failures]
        info["validation_failures"] = sorted(failures, key=lambda f: order(f["slice"]))
    except Exception as error:  # noqa: BLE001  (an unreadable evaluation must not hide the rest)
        info["metrics_error"] = f"{type(error).__name__}: {error}"
    return info


def _describe_failure(failure: Dict[str, Any]) -> str:
    name = "RMSE" if failure["metric"] == RMSE else failure["metric"]
    limits = failure["threshold"]
    if failure["is_change"]:
        return (f"{failure['slice']}: {name} change {failure['value']:+.4f} vs the baseline "
                f"> allowed {limits.get('max_change')}")
    if "upper_bound" in limits:
        return f"{failure['slice']}: {name} {failure['value']:.4f} > {limits['upper_bound']}"
    return f"{failure['slice']}: {name} {failure['value']:.4f} fails {limits}"


def not_blessed_reason(result: Dict[str, Any]) -> str:
    """Why the Evaluator did not bless: overall RMSE against the thresholds, failing slices."""
    rmse = (result.get("metrics") or {}).get(RMSE)
    baseline = (result.get("baseline_metrics") or {}).get(RMSE)
    limits = result.get("thresholds") or {}
    detail = [f"overall RMSE {rmse:.4f}"] if rmse is not None else []
    if "rmse_upper_bound" in limits:
        detail.append(f"upper bound {limits['rmse_upper_bound']}")
    if baseline is not None:
        detail.append(f"baseline (model {result['baseline_model_id']}) RMSE {baseline:.4f}")
        if "max_rmse_increase" in limits:
            detail.append(f"max increase {limits['max_rmse_increase']}")
    text = f"model {result['model_id']} was not blessed" + (
        f" ({', '.join(detail)})" if detail else "")
    failures = result.get("validation_failures") or []
    if failures:
        listed = "; ".join(_describe_failure(f) for f in failures[:_MAX_LISTED_FAILURES])
        more = len(failures) - _MAX_LISTED_FAILURES
        text += f": {len(failures)} threshold failure(s): {listed}" + (
            f"; and {more} more" if more > 0 else "")
    elif result.get("metrics_error"):
        text += f"; its evaluation could not be read: {result['metrics_error']}"
    return text


def _evaluations_of(store: Store, model_id: int) -> List[mlmd_pb2.Execution]:
    """Finished Evaluator executions that scored the model as the candidate, oldest first."""
    return [x for x in store.executions(node=fk.EVALUATOR_ID, input_of=model_id)
            if _successful(x) and getattr(_first(store.inputs(x.id), "model"), "id", None)
            == model_id]


def _pushes_of(store: Store, model_id: int) -> List[Dict[str, Any]]:
    pushes = []
    for pusher in store.executions(node=fk.PUSHER_ID, input_of=model_id):
        pushed = _first(store.outputs(pusher.id), "pushed_model")
        if pushed is not None:
            pushes.append({
                "pusher_execution_id": pusher.id, "run_id": store.run_of(pusher.id),
                "pushed_model_id": pushed.id, "pushed": bool(_custom(pushed, "pushed", 0)),
                "destination": _custom(pushed, "pushed_destination"),
                "version": _custom(pushed, "pushed_version"),
                "pushed_at": _time(pushed.mlmd_artifact.create_time_since_epoch)})
    return pushes


# ---------------------------------------------------------------------------------------------
# Models, slices, the pushed model.


def list_models(store: Store) -> List[Dict[str, Any]]:
    """Each Model, oldest first: its run, the TFMA metrics of its latest evaluation as the
    candidate (and the baseline's), blessed by any evaluation, pushed or not and where."""
    models = []
    for model in store.artifacts('type = "Model"'):
        trainer = store.producer(model.id)
        evaluators = _evaluations_of(store, model.id)
        latest = evaluation(store, evaluators[-1]) if evaluators else {}
        pushes = [p for p in _pushes_of(store, model.id) if p["pushed"]]
        models.append({
            "model_id": model.id, "run_id": store.run_of(trainer.id) if trainer else None,
            "trainer_execution_id": trainer.id if trainer else None, "uri": model.uri,
            "created": _time(model.mlmd_artifact.create_time_since_epoch),
            "evaluated": bool(evaluators), "metrics": latest.get("metrics"),
            "baseline_model_id": latest.get("baseline_model_id"),
            "baseline_metrics": latest.get("baseline_metrics"),
            "validation_ok": latest.get("validation_ok"),
            "evaluation_id": latest.get("evaluation_id"),
            "blessed": any(_custom(_first(store.outputs(x.id), "blessing"), "blessed", 0)
                           for x in evaluators) if evaluators else None,
            "pushed": bool(pushes),
            "pushed_destination": pushes[-1]["destination"] if pushes else None,
            "pushed_version": pushes[-1]["version"] if pushes else None})
    return models


def model_slices(store: Store, model_id: Optional[int] = None) -> Dict[str, Any]:
    """TFMA metrics of every slice for a model (default: the latest evaluated one), from the
    latest evaluation that took it as candidate. LookupError when there is none."""
    if model_id is None:
        evaluators = [x for x in store.executions(node=fk.EVALUATOR_ID) if _successful(x)]
        if not evaluators:
            raise LookupError("no model has been evaluated")
    else:
        if store.artifact(model_id) is None:
            raise LookupError(f"no artifact with id {model_id}")
        evaluators = _evaluations_of(store, model_id)
        if not evaluators:
            raise LookupError(f"model {model_id} has not been evaluated")
    return evaluation(store, evaluators[-1], with_slices=True)


def why_not_pushed(store: Store, run_id: Optional[str] = None) -> Optional[str]:
    """The one place that says why a run (default: the latest) pushed no model; None if it did."""
    run = store.run(run_id)
    if run is None:
        return "the pipeline has not run"
    record = _run_record(store, run)
    pushers = store.executions(node=fk.PUSHER_ID, run=run.name)
    if pushers and _successful(pushers[-1]):
        if _custom(_first(store.outputs(pushers[-1].id), "pushed_model"), "pushed", 0):
            return None
        evaluators = [x for x in store.executions(node=fk.EVALUATOR_ID, run=run.name)
                      if _successful(x)]
        result = evaluation(store, evaluators[-1]) if evaluators else None
        if result is not None and result["blessed"] is False:
            return not_blessed_reason(result)
        return f"the Pusher of run {run.name} pushed nothing"
    if record["failed_node"]:
        failure = failure_message(store, run.name, record["failed_node"])
        return f"run {run.name} failed at {record['failed_node']}" + (
            f": {failure}" if failure else "")
    if record["status"] == RUNNING:
        return f"run {run.name} has not finished (or was interrupted)"
    return f"run {run.name} has no Pusher (e.g. --validate-only)"


def pushed_model(store: Store) -> Dict[str, Any]:
    """The model being served (latest PushedModel with pushed=1): where, which Model, when; else
    `pushed` False and why. `latest_attempt` says why a later push attempt pushed nothing."""
    pushed = store.artifacts('type = "PushedModel" AND custom_properties.pushed.int_value = 1')
    pushers = store.executions(node=fk.PUSHER_ID)
    last_run = store.run_of(pushers[-1].id) if pushers else None
    if not pushed:
        return {"pushed": False, "reason": why_not_pushed(store, last_run)
                or "the pipeline has not pushed"}
    latest = pushed[-1]
    pusher = store.producer(latest.id)
    model = _first(store.inputs(pusher.id), "model") if pusher else None
    destination = _custom(latest, "pushed_destination")
    attempt = why_not_pushed(store, last_run) if last_run else None
    return {
        "pushed": True, "destination": destination,
        "destination_exists": bool(destination) and os.path.isdir(destination),
        "version": _custom(latest, "pushed_version"), "pushed_model_id": latest.id,
        "pushed_model_uri": latest.uri, "model_id": model.id if model else None,
        "model_uri": model.uri if model else None,
        "run_id": store.run_of(pusher.id) if pusher else None,
        "pushed_at": _time(latest.mlmd_artifact.create_time_since_epoch),
        "latest_attempt": f"run {last_run}: {attempt}" if attempt else None}


# ---------------------------------------------------------------------------------------------
# Lineage: data -> examples -> model -> evaluations and pushes.


def read_model_run(model_run_uri: Optional[str]) -> Optional[Dict[str, Any]]:
    """The Trainer's metrics.json in its ModelRun folder (None when absent)."""
    from kiko_model.trainer import METRICS_FILE

    report = read_json_file(os.path.join(model_run_uri, METRICS_FILE)) if model_run_uri else None
    return report if isinstance(report, dict) else None


def _trainer_record(store: Store, trainer: mlmd_pb2.Execution) -> Dict[str, Any]:
    properties = _properties(trainer)
    custom_config = _json(properties.get("custom_config")) or {}
    model_run = _first(store.outputs(trainer.id), "model_run")
    report = read_model_run(model_run.uri if model_run else None) or {}
    return {
        "execution_id": trainer.id, "run_id": store.run_of(trainer.id),
        "state": _State.Name(trainer.last_known_state),
        "started": _time(trainer.create_time_since_epoch),
        "duration_s": _duration_s([trainer]), "run_fn": properties.get("run_fn"),
        "hparam_overrides": custom_config.get(TRAINER_HPARAMS_KEY, {}),
        "model_code": custom_config.get("model_code"),
        "model_run_id": model_run.id if model_run else None,
        "model_run_uri": model_run.uri if model_run else None,
        "hparams": report.get("hparams"), "final_metrics": report.get("final")}


def lineage(store: Store, model_id: Optional[int] = None) -> Dict[str, Any]:
    """A model's provenance and fate (default: the pushed model, else the latest, and `chosen`
    says which): Trainer, Examples, ExampleGen input, Schema; evaluations and pushes.
    LookupError when there is no such Model."""
    chosen = "requested"
    if model_id is None:
        model_id, chosen = pushed_model(store).get("model_id"), "pushed"
        if model_id is None:
            models = store.artifacts('type = "Model"')
            if not models:
                raise LookupError("no Model artifact in this store")
            model_id, chosen = models[-1].id, "latest (no model has been pushed)"
    model = store.artifact(model_id)
    if model is None or model.type_name != "Model":
        raise LookupError(f"no Model artifact with id {model_id}")
    trainer = store.producer(model.id)
    inputs = store.inputs(trainer.id) if trainer else {}
    examples, schema = _first(inputs, "examples"), _first(inputs, "schema")
    example_gen = store.producer(examples.id) if examples else None
    schema_gen = store.producer(schema.id) if schema else None
    gen_properties = _properties(example_gen) if example_gen else {}
    input_config = _json(gen_properties.get("input_config")) or {}
    keep = ("evaluator_execution_id", "run_id", "state", "evaluation_id", "evaluation_uri",
            "metrics", "baseline_model_id", "validation_ok", "blessing_id", "blessed")
    return {
        "chosen": chosen,
        "model": {"id": model.id, "uri": model.uri,
                  "created": _time(model.mlmd_artifact.create_time_since_epoch)},
        "trainer": _trainer_record(store, trainer) if trainer else None,
        "examples": None if examples is None else {
            "id": examples.id, "uri": examples.uri, "span": _custom(examples, "span"),
            "input_fingerprint": _custom(examples, "input_fingerprint"),
            "data_quality": data_quality(examples), **_artifact_details(examples)},
        "example_gen": None if example_gen is None else {
            "execution_id": example_gen.id, "node_id": store.node_of(example_gen.id),
            "run_id": store.run_of(example_gen.id),
            "state": _State.Name(example_gen.last_known_state),
            "input_base": gen_properties.get("input_base"),
            "input_patterns": {s.get("name", ""): s.get("pattern")
                               for s in input_config.get("splits", [])},
            "output_config": _json(gen_properties.get("output_config")),
            "malformed_lines": gen_properties.get("malformed_lines")},
        "schema": None if schema is None else {
            "id": schema.id, "uri": schema.uri,
            "node_id": store.node_of(schema_gen.id) if schema_gen else None,
            "schema_file": _properties(schema_gen).get("schema_file") if schema_gen else None},
        "evaluations": [{k: v for k, v in evaluation(store, x).items() if k in keep}
                        for x in store.executions(node=fk.EVALUATOR_ID, input_of=model.id)
                        if getattr(_first(store.inputs(x.id), "model"), "id", None) == model.id],
        "pushes": _pushes_of(store, model.id)}


# ---------------------------------------------------------------------------------------------
# One run, for the end of a run and the report.


def failure_message(store: Store, run_id: str, node: str) -> Optional[str]:
    """What a failed node recorded (TFX's execution result); for the anomalies gate, the
    anomalies it stopped on."""
    executions = store.executions(node=node, run=run_id)
    if not executions:
        return None
    result = execution_lib.get_execution_result(executions[-1], ignore_parse_errors=True)
    if result is not None and result.result_message.strip():
        return result.result_message.strip().splitlines()[-1]
    if node == fk.ANOMALIES_GATE_ID:
        inputs = store.inputs(executions[-1].id)
        lines = anomaly_lines(_first(inputs, "anomalies"), _first(inputs, "examples"))
        return "data anomalies: " + "; ".join(lines) if lines else None
    return None


def load_statistics(statistics, split: str):
    """TFDV's view of one split of an ExampleStatistics artifact (TFX's own loader)."""
    from tfx.components.statistics_gen import stats_artifact_utils

    return stats_artifact_utils.load_statistics(statistics, split).get_default_slice()


def anomaly_lines(anomalies, examples=None) -> List[str]:
    """One line per anomaly in every split of an ExampleAnomalies artifact, with the extreme
    values the ExampleGen recorded for the examples."""
    from components.anomalies_gate.component import (
        describe_anomalies, extremes_of, read_anomalies)

    if anomalies is None:
        return []
    extremes = extremes_of(data_quality(examples) or {})
    return [line for split in artifact_utils.decode_split_names(anomalies.split_names)
            for line in describe_anomalies(read_anomalies(anomalies.uri, split), split,
                                           extremes)]


def run_outputs(store: Store, run_id: str) -> Dict[str, Any]:
    """The latest artifact of each kind one run used or made (None where the run got nowhere)."""
    found: Dict[str, Any] = {}
    for node, key, where in (
            (fk.EXAMPLE_GEN_ID, "examples", "outputs"),
            (fk.STATISTICS_GEN_ID, "statistics", "outputs"),
            (fk.EXAMPLE_VALIDATOR_ID, "anomalies", "outputs"),
            (fk.TRAINER_ID, "model", "outputs"), (fk.TRAINER_ID, "model_run", "outputs"),
            (fk.EVALUATOR_ID, "evaluation", "outputs"),
            (fk.PUSHER_ID, "pushed_model", "outputs")):
        executions = [x for x in store.executions(node=node, run=run_id) if _successful(x)]
        artifacts = getattr(store, where)(executions[-1].id) if executions else {}
        found[key] = _first(artifacts, key)
        if node == fk.EVALUATOR_ID:
            found["evaluator"] = executions[-1] if executions else None
    return found


def run_summary(store: Store, run_id: Optional[str] = None) -> Dict[str, Any]:
    """A short account of one run (default: the latest): status, data quality, eval metrics,
    blend, blessed, pushed path or why not. Fields are None where the run did not get."""
    summary: Dict[str, Any] = dict.fromkeys((
        "run_id", "started", "duration_s", "failed_node", "failure", "model_id", "eval_rmse",
        "eval_mae", "eval_example_count", "blessed", "pushed_path", "not_pushed_reason",
        "rejected_lines", "data_quality", "blend", "skipped_members"))
    summary.update(status=NO_RUNS, cached=0)
    run = store.run(run_id)
    if run is None:
        summary["not_pushed_reason"] = why_not_pushed(store)
        return summary
    record = _run_record(store, run)
    summary.update({k: record[k] for k in ("run_id", "status", "started", "duration_s",
                                           "cached", "failed_node")})
    if record["failed_node"]:
        summary["failure"] = failure_message(store, run.name, record["failed_node"])
    found = run_outputs(store, run.name)
    if found["examples"] is not None:
        summary["rejected_lines"] = _custom(found["examples"], "rejected_lines")
        summary["data_quality"] = data_quality(found["examples"])
    summary["model_id"] = found["model"].id if found["model"] is not None else None
    report = read_model_run(found["model_run"].uri if found["model_run"] else None) or {}
    training = training_members(report)
    summary["blend"], summary["skipped_members"] = training["blend"], training["skipped"] or None
    if found["evaluator"] is not None:
        result = evaluation(store, found["evaluator"])
        metrics = result["metrics"] or {}
        count = metrics.get(EXAMPLE_COUNT)
        summary.update(eval_rmse=metrics.get(RMSE), eval_mae=metrics.get(MAE),
                       eval_example_count=None if count is None else int(count),
                       blessed=result["blessed"])
        if result.get("metrics_error"):
            summary["metrics_error"] = result["metrics_error"]
    if found["pushed_model"] is not None and _custom(found["pushed_model"], "pushed", 0):
        summary["pushed_path"] = _custom(found["pushed_model"], "pushed_destination")
    else:
        summary["not_pushed_reason"] = why_not_pushed(store, run.name)
    return summary


def training_members(report: Dict[str, Any]) -> Dict[str, Any]:
    """The Trainer's model members and blend from metrics.json, in its newer shape (`members`,
    `blend`) or the older one (per-epoch `history` by stage, `blend_weights` intercept first)."""
    history = report.get("history") or []
    members = report.get("members")
    if not isinstance(members, list):
        stages = list(dict.fromkeys(h.get("stage") for h in history))
        members = []
        for stage in stages:
            epochs = [h for h in history if h.get("stage") == stage]
            best = min(epochs, key=lambda h: h.get("val_rmse", float("inf")))
            members.append({"name": stage, "val_rmse": best.get("val_rmse"),
                            "val_mae": best.get("val_mae"),
                            "best_epoch": best.get("stage_epoch", best.get("epoch")),
                            "epochs_run": len(epochs),
                            "seconds": sum(h.get("seconds", 0.0) for h in epochs)})
    blend = report.get("blend")
    if not isinstance(blend, dict) and report.get("blend_weights"):
        weights = list(report["blend_weights"])
        blend = {"names": None, "weights": weights[1:], "intercept": weights[0]}
    return {"members": members, "blend": blend or None, "history": history,
            "skipped": dict(report.get("skipped_members") or {})}
