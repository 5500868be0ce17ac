"""Reads a pipeline home's ML Metadata: runs, artifacts, models, slice metrics, pushes, lineage.

    kiko inspect [--home DIR | --metadata PATH] [--json] [COMMAND]
    kiko inspect ...

Commands: summary (default: the latest run and the pushed model), runs, artifacts [--run ID],
models, slices [--model ID], pushed, lineage [--model ID]. The data comes from pure functions
returning plain dicts and lists (`list_runs`, `list_models`, `pushed_model`, ...), so `--json`
prints exactly what the tables show.
"""

import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

import argparse
import datetime
import json
import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from google.protobuf import json_format
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from kiko_model import features as fk
from pipeline import configs

# Context types TFX writes: one per pipeline, per run (name = run id) and per node
# (name = '<pipeline>.<node id>').
PIPELINE_CONTEXT = "pipeline"
RUN_CONTEXT = "pipeline_run"
NODE_CONTEXT = "node"

# Run statuses.
COMPLETE = "COMPLETE"
FAILED = "FAILED"
RUNNING = "RUNNING"
NO_RUNS = "NO RUNS"

# TFMA metric names as the Evaluator records them.
RMSE = "root_mean_squared_error"
MSE = "mean_squared_error"
MAE = "mean_absolute_error"
EXAMPLE_COUNT = "example_count"
OVERALL = "overall"

# Pipeline order of the nodes, for listing; nodes not named here follow in execution order.
NODE_ORDER = (fk.EXAMPLE_GEN_ID, fk.STATISTICS_GEN_ID, fk.SCHEMA_GEN_ID,
              fk.EXAMPLE_VALIDATOR_ID, fk.ANOMALIES_GATE_ID, fk.TRAINER_ID,
              fk.MODEL_RESOLVER_ID, fk.EVALUATOR_ID, fk.PUSHER_ID)

_State = mlmd_pb2.Execution.State
_FAILED_STATES = (_State.FAILED, _State.CANCELED)
_DONE_STATES = (_State.COMPLETE, _State.CACHED)
_OUTPUT_EVENTS = (mlmd_pb2.Event.OUTPUT, mlmd_pb2.Event.DECLARED_OUTPUT,
                  mlmd_pb2.Event.INTERNAL_OUTPUT, mlmd_pb2.Event.PENDING_OUTPUT)
_INPUT_EVENTS = (mlmd_pb2.Event.INPUT, mlmd_pb2.Event.DECLARED_INPUT,
                 mlmd_pb2.Event.INTERNAL_INPUT)
_MAX_LISTED_FAILURES = 5


# ---------------------------------------------------------------------------------------------
# The store and a cached view of its graph.


class StoreError(RuntimeError):
    """The metadata file exists but is not a readable ML Metadata database."""


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    """A read-only store on an existing SQLite ML Metadata file (never creates one).

    Raises FileNotFoundError when the file is missing and StoreError when it is not ML Metadata.
    """
    path = os.path.abspath(metadata_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no ML Metadata database at {path}")
    config = mlmd_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = mlmd_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        return metadata_store.MetadataStore(config)
    except RuntimeError as error:
        reason = str(error).rsplit(" query:", 1)[0]
        raise StoreError(f"{path} is not a readable ML Metadata database ({reason})") from error


@dataclass
class _Run:
    run_id: str
    context_id: int
    executions: List[mlmd_pb2.Execution]


def _value(value: mlmd_pb2.Value) -> Any:
    """A property value as a plain Python value."""
    kind = value.WhichOneof("value")
    if kind in ("int_value", "double_value", "string_value", "bool_value"):
        return getattr(value, kind)
    if kind == "struct_value":
        return json_format.MessageToDict(value.struct_value)
    return None


def _prop(entity: Any, name: str, default: Any = None) -> Any:
    """A property or custom property of an artifact or execution."""
    for properties in (entity.properties, entity.custom_properties):
        if name in properties:
            return _value(properties[name])
    return default


def _json_prop(entity: Any, name: str) -> Any:
    """A property holding JSON text (TFX exec properties), parsed; None when absent or bad."""
    text = _prop(entity, name)
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _time(ms: int) -> Optional[str]:
    """Milliseconds since the epoch as local ISO time, seconds precision."""
    if not ms:
        return None
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return moment.astimezone().isoformat(sep=" ", timespec="seconds")


def _event_key(event: mlmd_pb2.Event) -> str:
    for step in event.path.steps:
        if step.HasField("key"):
            return step.key
    return ""


class _Graph:
    """Cached lookups over one store: runs, each execution's node and run, events, artifacts.

    Everything loads on demand, so a question about the latest run reads only that run.
    """

    def __init__(self, store: metadata_store.MetadataStore):
        self.store = store
        self._artifact_types = {t.id: t.name for t in store.get_artifact_types()}
        self._context_types = {t.id: t.name for t in store.get_context_types()}
        self._run_contexts: Optional[List[mlmd_pb2.Context]] = None
        self._runs: Dict[int, _Run] = {}
        self._node_contexts: Optional[Dict[str, List[mlmd_pb2.Context]]] = None
        self._pipelines: Optional[List[str]] = None
        self._placement: Dict[int, Tuple[str, Optional[str]]] = {}
        self._artifacts: Dict[int, mlmd_pb2.Artifact] = {}
        self._executions: Dict[int, mlmd_pb2.Execution] = {}
        self._events_by_execution: Dict[int, List[mlmd_pb2.Event]] = {}
        self._events_by_artifact: Dict[int, List[mlmd_pb2.Event]] = {}

    # Runs and nodes.

    def _contexts_of_type(self, type_name: str) -> List[mlmd_pb2.Context]:
        if type_name not in self._context_types.values():
            return []
        return sorted(self.store.get_contexts_by_type(type_name),
                      key=lambda c: (c.create_time_since_epoch, c.id))

    def _load_run(self, context: mlmd_pb2.Context) -> _Run:
        if context.id not in self._runs:
            executions = sorted(self.store.get_executions_by_context(context.id),
                                key=lambda e: e.id)
            for execution in executions:
                self._executions[execution.id] = execution
            self._runs[context.id] = _Run(context.name, context.id, executions)
        return self._runs[context.id]

    def _run_context_list(self) -> List[mlmd_pb2.Context]:
        if self._run_contexts is None:
            self._run_contexts = self._contexts_of_type(RUN_CONTEXT)
        return self._run_contexts

    def runs(self) -> List[_Run]:
        """Every pipeline run, oldest first."""
        return [self._load_run(c) for c in self._run_context_list()]

    def latest_run(self) -> Optional[_Run]:
        contexts = self._run_context_list()
        return self._load_run(contexts[-1]) if contexts else None

    def run(self, run_id: str) -> _Run:
        for context in self._run_context_list():
            if context.name == run_id:
                return self._load_run(context)
        raise LookupError(f"no pipeline run {run_id!r} (see the `runs` command)")

    def _pipeline_names(self) -> List[str]:
        if self._pipelines is None:
            self._pipelines = [c.name for c in self._contexts_of_type(PIPELINE_CONTEXT)]
        return self._pipelines

    def _place(self, execution_id: int) -> Tuple[str, Optional[str]]:
        """(node id, run id) of an execution, from the contexts it is associated with."""
        if execution_id not in self._placement:
            node, run = "?", None
            for context in self.store.get_contexts_by_execution(execution_id):
                kind = self._context_types.get(context.type_id)
                if kind == NODE_CONTEXT:
                    node = _node_id(context.name, self._pipeline_names())
                elif kind == RUN_CONTEXT:
                    run = context.name
            self._placement[execution_id] = (node, run)
        return self._placement[execution_id]

    def node_of(self, execution_id: int) -> str:
        return self._place(execution_id)[0]

    def run_of(self, execution_id: int) -> Optional[str]:
        return self._place(execution_id)[1]

    def _nodes(self) -> Dict[str, List[mlmd_pb2.Context]]:
        if self._node_contexts is None:
            self._node_contexts = {}
            for context in self._contexts_of_type(NODE_CONTEXT):
                node_id = _node_id(context.name, self._pipeline_names())
                self._node_contexts.setdefault(node_id, []).append(context)
        return self._node_contexts

    def node_ids(self) -> List[str]:
        """Every node id the store knows, in pipeline order."""
        return _in_node_order(self._nodes())

    def executions_of_node(self, node_id: str) -> List[mlmd_pb2.Execution]:
        """The node's executions in every run, oldest first."""
        found: Dict[int, mlmd_pb2.Execution] = {}
        for context in self._nodes().get(node_id, []):
            for execution in self.store.get_executions_by_context(context.id):
                found[execution.id] = execution
        self._executions.update(found)
        return [found[i] for i in sorted(found)]

    # Executions, artifacts and events.

    def execution(self, execution_id: int) -> mlmd_pb2.Execution:
        if execution_id not in self._executions:
            for execution in self.store.get_executions_by_id([execution_id]):
                self._executions[execution.id] = execution
        return self._executions[execution_id]

    def artifacts(self, ids: Iterable[int]) -> List[mlmd_pb2.Artifact]:
        ids = list(ids)
        missing = sorted({i for i in ids if i not in self._artifacts})
        if missing:
            for artifact in self.store.get_artifacts_by_id(missing):
                self._artifacts[artifact.id] = artifact
        return [self._artifacts[i] for i in ids if i in self._artifacts]

    def artifact(self, artifact_id: int) -> Optional[mlmd_pb2.Artifact]:
        found = self.artifacts([artifact_id])
        return found[0] if found else None

    def artifacts_of_type(self, type_name: str) -> List[mlmd_pb2.Artifact]:
        """Every artifact of a type, oldest first (none when the type was never registered)."""
        if type_name not in self._artifact_types.values():
            return []
        found = sorted(self.store.get_artifacts_by_type(type_name), key=lambda a: a.id)
        for artifact in found:
            self._artifacts[artifact.id] = artifact
        return found

    def type_name(self, artifact: mlmd_pb2.Artifact) -> str:
        return self._artifact_types.get(artifact.type_id, "?")

    def events_of_execution(self, execution_id: int) -> List[mlmd_pb2.Event]:
        if execution_id not in self._events_by_execution:
            self._events_by_execution[execution_id] = list(
                self.store.get_events_by_execution_ids([execution_id]))
        return self._events_by_execution[execution_id]

    def events_of_artifact(self, artifact_id: int) -> List[mlmd_pb2.Event]:
        if artifact_id not in self._events_by_artifact:
            self._events_by_artifact[artifact_id] = list(
                self.store.get_events_by_artifact_ids([artifact_id]))
        return self._events_by_artifact[artifact_id]

    def _linked(self, execution_id: int, types: Tuple[int, ...],
                key: Optional[str]) -> List[mlmd_pb2.Artifact]:
        events = [e for e in self.events_of_execution(execution_id)
                  if e.type in types and (key is None or _event_key(e) == key)]
        return self.artifacts(e.artifact_id for e in events)

    def outputs(self, execution_id: int, key: Optional[str] = None) -> List[mlmd_pb2.Artifact]:
        return self._linked(execution_id, _OUTPUT_EVENTS, key)

    def inputs(self, execution_id: int, key: Optional[str] = None) -> List[mlmd_pb2.Artifact]:
        return self._linked(execution_id, _INPUT_EVENTS, key)

    def output_events(self, execution_id: int) -> List[mlmd_pb2.Event]:
        return [e for e in self.events_of_execution(execution_id) if e.type in _OUTPUT_EVENTS]

    def producer(self, artifact_id: int) -> Optional[mlmd_pb2.Execution]:
        """The execution that wrote the artifact (not one that reused it from the cache)."""
        writers = [self.execution(e.execution_id) for e in self.events_of_artifact(artifact_id)
                   if e.type in _OUTPUT_EVENTS and e.type != mlmd_pb2.Event.INTERNAL_OUTPUT]
        fresh = [x for x in writers if x.last_known_state != _State.CACHED]
        chosen = fresh or writers
        return min(chosen, key=lambda x: x.id) if chosen else None

    def consumers(self, artifact_id: int, key: Optional[str] = None,
                  node_id: Optional[str] = None) -> List[mlmd_pb2.Execution]:
        """Executions that took the artifact as input (under `key`, of `node_id`), oldest first."""
        ids = sorted({e.execution_id for e in self.events_of_artifact(artifact_id)
                      if e.type in _INPUT_EVENTS and (key is None or _event_key(e) == key)})
        executions = [self.execution(i) for i in ids]
        if node_id is not None:
            executions = [x for x in executions if self.node_of(x.id) == node_id]
        return executions


def _node_id(context_name: str, pipelines: Sequence[str]) -> str:
    """'<pipeline>.<node id>' -> node id."""
    for pipeline in sorted(pipelines, key=len, reverse=True):
        if context_name.startswith(pipeline + "."):
            return context_name[len(pipeline) + 1:]
    return context_name.rpartition(".")[2]


def _in_node_order(node_ids: Iterable[str]) -> List[str]:
    unique = list(dict.fromkeys(node_ids))
    known = [n for n in NODE_ORDER if n in unique]
    return known + [n for n in unique if n not in NODE_ORDER]


def _state(execution: mlmd_pb2.Execution) -> str:
    return _State.Name(execution.last_known_state)


def _run_status(executions: Sequence[mlmd_pb2.Execution]) -> str:
    """FAILED if any execution failed or was canceled, RUNNING while any is unfinished (or was
    interrupted) or none started yet, else COMPLETE."""
    states = [x.last_known_state for x in executions]
    if any(s in _FAILED_STATES for s in states):
        return FAILED
    if not states or any(s not in _DONE_STATES for s in states):
        return RUNNING
    return COMPLETE


def _duration_s(executions: Sequence[mlmd_pb2.Execution]) -> Optional[float]:
    if not executions:
        return None
    start = min(x.create_time_since_epoch for x in executions)
    end = max(x.last_update_time_since_epoch for x in executions)
    return round((end - start) / 1000, 3)


def _latest_of_node(graph: _Graph, run: _Run, node_id: str) -> Optional[mlmd_pb2.Execution]:
    found = [x for x in run.executions if graph.node_of(x.id) == node_id]
    return found[-1] if found else None


def _single(artifacts: Sequence[mlmd_pb2.Artifact]) -> Optional[mlmd_pb2.Artifact]:
    return artifacts[-1] if artifacts else None


# ---------------------------------------------------------------------------------------------
# TFMA results.


def _slice_name(slice_key: Any) -> str:
    """'overall', or 'feature=value[, feature=value]' for a TFMA SliceKey proto."""
    parts = []
    for single in slice_key.single_slice_keys:
        kind = single.WhichOneof("kind")
        value = getattr(single, kind) if kind else ""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        parts.append(f"{single.column}={value}")
    return ", ".join(parts) if parts else OVERALL


def _read_metrics(evaluation_uri: str) -> Dict[str, Dict[str, Dict[str, float]]]:
    """slice name -> 'candidate' | 'baseline' | 'diff' -> metric name -> value."""
    import tensorflow_model_analysis as tfma

    result: Dict[str, Dict[str, Dict[str, float]]] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        by_model = result.setdefault(_slice_name(metrics.slice_key), {})
        for entry in metrics.metric_keys_and_values:
            key, value = entry.key, entry.value
            if key.HasField("sub_key") or value.WhichOneof("type") != "double_value":
                continue
            role = ("diff" if key.is_diff else
                    "baseline" if key.model_name == "baseline" else "candidate")
            by_model.setdefault(role, {})[key.name] = value.double_value.value
    return result


def _threshold(metric_threshold: Any) -> Dict[str, float]:
    found: Dict[str, float] = {}
    if metric_threshold.HasField("value_threshold"):
        value = metric_threshold.value_threshold
        if value.HasField("upper_bound"):
            found["upper_bound"] = value.upper_bound.value
        if value.HasField("lower_bound"):
            found["lower_bound"] = value.lower_bound.value
    if metric_threshold.HasField("change_threshold"):
        change = metric_threshold.change_threshold
        if change.HasField("absolute"):
            found["max_change"] = change.absolute.value
        if change.HasField("relative"):
            found["max_relative_change"] = change.relative.value
    return found


def _read_validation(evaluation_uri: str) -> Optional[Dict[str, Any]]:
    """The validation result: ok flag, whether there was no baseline, and each failure."""
    import tensorflow_model_analysis as tfma

    if not os.path.exists(os.path.join(evaluation_uri, "validations.tfrecord")):
        return None
    result = tfma.load_validation_result(evaluation_uri)
    failures = []
    for per_slice in result.metric_validations_per_slice:
        slice_name = _slice_name(per_slice.slice_key)
        for failure in per_slice.failures:
            failures.append({
                "slice": slice_name,
                "metric": failure.metric_key.name,
                "is_change": failure.metric_key.is_diff,
                "value": failure.metric_value.double_value.value,
                "threshold": _threshold(failure.metric_threshold),
                "message": failure.message,
            })
    return {"ok": result.validation_ok, "rubber_stamp": result.rubber_stamp,
            "failures": failures}


def _rmse_thresholds(evaluator: Optional[mlmd_pb2.Execution]) -> Dict[str, float]:
    """The RMSE upper bound and allowed increase of the Evaluator's eval_config."""
    config = (_json_prop(evaluator, "eval_config") if evaluator is not None else None) or {}
    found: Dict[str, float] = {}
    for spec in config.get("metrics_specs", config.get("metricsSpecs")) or []:
        for metric in spec.get("metrics", []):
            if metric.get("class_name", metric.get("className")) != "RootMeanSquaredError":
                continue
            threshold = metric.get("threshold", {})
            value = threshold.get("value_threshold", threshold.get("valueThreshold", {}))
            change = threshold.get("change_threshold", threshold.get("changeThreshold", {}))
            bound = value.get("upper_bound", value.get("upperBound"))
            increase = change.get("absolute")
            if isinstance(bound, dict):
                bound = bound.get("value")
            if isinstance(increase, dict):
                increase = increase.get("value")
            if bound is not None:
                found["rmse_upper_bound"] = float(bound)
            if increase is not None:
                found["max_rmse_increase"] = float(increase)
    return found


def _slice_columns(evaluator: Optional[mlmd_pb2.Execution]) -> List[str]:
    """The slicing features of the Evaluator's eval_config, in its order."""
    config = _json_prop(evaluator, "eval_config") if evaluator is not None else None
    columns: List[str] = []
    specs = (config or {}).get("slicing_specs", (config or {}).get("slicingSpecs")) or []
    for spec in specs:
        columns += spec.get("feature_keys", spec.get("featureKeys", []))
    return columns


def _evaluation(graph: _Graph, evaluator: mlmd_pb2.Execution,
                with_slices: bool = False) -> Dict[str, Any]:
    """What one Evaluator execution found: overall candidate (and baseline) metrics, the
    validation result and the blessing; `with_slices` adds every slice's metrics."""
    evaluation = _single(graph.outputs(evaluator.id, "evaluation"))
    blessing = _single(graph.outputs(evaluator.id, "blessing"))
    baseline = _single(graph.inputs(evaluator.id, "baseline_model"))
    candidate = _single(graph.inputs(evaluator.id, "model"))
    info: Dict[str, Any] = {
        "evaluator_execution_id": evaluator.id,
        "run_id": graph.run_of(evaluator.id),
        "state": _state(evaluator),
        "model_id": candidate.id if candidate else None,
        "baseline_model_id": baseline.id if baseline else None,
        "evaluation_id": evaluation.id if evaluation else None,
        "evaluation_uri": evaluation.uri if evaluation else None,
        "metrics": None,
        "baseline_metrics": None,
        "validation_ok": None,
        "validation_failures": [],
        "thresholds": _rmse_thresholds(evaluator),
        "blessing_id": blessing.id if blessing else None,
        "blessed": bool(_prop(blessing, "blessed", 0)) if blessing else None,
    }
    if evaluation is None:
        return info
    try:
        by_slice = _read_metrics(evaluation.uri)
        overall = by_slice.get(OVERALL, {})
        info["metrics"] = overall.get("candidate")
        info["baseline_metrics"] = overall.get("baseline")
        if with_slices:
            info["slices"] = by_slice
        validation = _read_validation(evaluation.uri)
        if validation is not None:
            info["validation_ok"] = validation["ok"]
            order = _slice_sort_key(_slice_columns(evaluator))
            info["validation_failures"] = sorted(validation["failures"],
                                                 key=lambda f: order(f["slice"]))
    except Exception as error:  # noqa: BLE001  (an unreadable evaluation must not hide the rest)
        info["metrics_error"] = f"{type(error).__name__}: {error}"
    return info


def _describe_failure(failure: Dict[str, Any]) -> str:
    threshold = failure["threshold"]
    name = "RMSE" if failure["metric"] == RMSE else failure["metric"]
    if failure["is_change"]:
        limit = threshold.get("max_change")
        return (f"{failure['slice']}: {name} change {failure['value']:+.4f} vs the baseline "
                f"> allowed {limit}")
    if "upper_bound" in threshold:
        return f"{failure['slice']}: {name} {failure['value']:.4f} > {threshold['upper_bound']}"
    return f"{failure['slice']}: {name} {failure['value']:.4f} fails {threshold}"


def _not_blessed_reason(evaluation: Dict[str, Any]) -> str:
    """Why the Evaluator did not bless: overall RMSE against the thresholds, failing slices."""
    parts = [f"model {evaluation['model_id']} was not blessed"]
    rmse = (evaluation.get("metrics") or {}).get(RMSE)
    limits = evaluation.get("thresholds") or {}
    detail = []
    if rmse is not None:
        detail.append(f"overall RMSE {rmse:.4f}")
    if "rmse_upper_bound" in limits:
        detail.append(f"upper bound {limits['rmse_upper_bound']}")
    baseline = (evaluation.get("baseline_metrics") or {}).get(RMSE)
    if baseline is not None:
        detail.append(f"baseline (model {evaluation['baseline_model_id']}) RMSE {baseline:.4f}")
        if "max_rmse_increase" in limits:
            detail.append(f"max increase {limits['max_rmse_increase']}")
    if detail:
        parts.append(" (" + ", ".join(detail) + ")")
    failures = evaluation.get("validation_failures") or []
    if failures:
        listed = "; ".join(_describe_failure(f) for f in failures[:_MAX_LISTED_FAILURES])
        more = len(failures) - _MAX_LISTED_FAILURES
        parts.append(f": {len(failures)} threshold failure(s): {listed}"
                     + (f"; and {more} more" if more > 0 else ""))
    elif evaluation.get("metrics_error"):
        parts.append(f"; its evaluation could not be read: {evaluation['metrics_error']}")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Data: plain dicts and lists.


def _run_record(graph: _Graph, run: _Run) -> Dict[str, Any]:
    executions = run.executions
    status = _run_status(executions)
    nodes = []
    by_node: Dict[str, mlmd_pb2.Execution] = {}
    for execution in executions:
        by_node[graph.node_of(execution.id)] = execution
    for node_id in _in_node_order(by_node):
        execution = by_node[node_id]
        nodes.append({
            "node_id": node_id,
            "state": _state(execution),
            "execution_id": execution.id,
            "started": _time(execution.create_time_since_epoch),
            "duration_s": _duration_s([execution]),
        })
    failed = [n["node_id"] for n in nodes if n["state"] in ("FAILED", "CANCELED")]
    not_run: List[str] = []
    if status != COMPLETE:
        not_run = [n for n in _in_node_order(list(NODE_ORDER) + graph.node_ids())
                   if n not in by_node]
    return {
        "run_id": run.run_id,
        "status": status,
        "executions": len(executions),
        "cached": sum(x.last_known_state == _State.CACHED for x in executions),
        "started": _time(min((x.create_time_since_epoch for x in executions), default=0)),
        "duration_s": _duration_s(executions),
        "failed_node": failed[0] if failed else None,
        "nodes": nodes,
        "not_run": not_run,
    }


def list_runs(store: metadata_store.MetadataStore) -> List[Dict[str, Any]]:
    """Every pipeline run, oldest first: status, cache use, timing and each node's state; for a
    run that did not complete, `not_run` names the pipeline nodes it never reached."""
    graph = _Graph(store)
    return [_run_record(graph, run) for run in graph.runs()]


def _artifact_details(graph: _Graph, artifact: mlmd_pb2.Artifact) -> Dict[str, Any]:
    """The type-specific facts worth a glance: splits, rejected lines, blessed, pushed."""
    details: Dict[str, Any] = {}
    splits = _prop(artifact, "split_names")
    if isinstance(splits, str):
        try:
            details["splits"] = json.loads(splits)
        except ValueError:
            details["splits"] = splits
    type_name = graph.type_name(artifact)
    if type_name == "Examples":
        details["rejected_lines"] = _prop(artifact, "rejected_lines")
    elif type_name == "ModelBlessing":
        details["blessed"] = bool(_prop(artifact, "blessed", 0))
        details["model_id"] = _prop(artifact, "current_model_id")
    elif type_name == "PushedModel":
        details["pushed"] = bool(_prop(artifact, "pushed", 0))
        if details["pushed"]:
            details["destination"] = _prop(artifact, "pushed_destination")
    return details


def _origin(execution: mlmd_pb2.Execution, event: mlmd_pb2.Event) -> str:
    if event.type == mlmd_pb2.Event.INTERNAL_OUTPUT:
        return "resolved"
    return "cache" if execution.last_known_state == _State.CACHED else "new"


def list_artifacts(store: metadata_store.MetadataStore,
                   run_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """The artifacts each node output per run (all runs, or `run_id`). `origin` is "new" (this
    execution wrote it), "cache" (an earlier run's, reused) or "resolved" (a resolver's pick).
    Raises LookupError for an unknown run id."""
    graph = _Graph(store)
    runs = [graph.run(run_id)] if run_id is not None else graph.runs()
    rows = []
    for run in runs:
        executions = {graph.node_of(x.id): x for x in run.executions}
        for node_id in _in_node_order(executions):
            execution = executions[node_id]
            events = sorted(graph.output_events(execution.id),
                            key=lambda e: (_event_key(e), e.artifact_id))
            artifacts = {a.id: a for a in graph.artifacts(e.artifact_id for e in events)}
            for event in events:
                artifact = artifacts.get(event.artifact_id)
                if artifact is None:
                    continue
                rows.append({
                    "run_id": run.run_id,
                    "node_id": node_id,
                    "execution_id": execution.id,
                    "key": _event_key(event),
                    "type": graph.type_name(artifact),
                    "artifact_id": artifact.id,
                    "state": mlmd_pb2.Artifact.State.Name(artifact.state),
                    "uri": artifact.uri,
                    "origin": _origin(execution, event),
                    **_artifact_details(graph, artifact),
                })
    return rows


def _pushes_of(graph: _Graph, model_id: int) -> List[Dict[str, Any]]:
    """Each Pusher execution that took the model, with its PushedModel artifact."""
    pushes = []
    for pusher in graph.consumers(model_id, "model", fk.PUSHER_ID):
        pushed = _single(graph.outputs(pusher.id, "pushed_model"))
        if pushed is None:
            continue
        pushes.append({
            "pusher_execution_id": pusher.id,
            "run_id": graph.run_of(pusher.id),
            "pushed_model_id": pushed.id,
            "pushed": bool(_prop(pushed, "pushed", 0)),
            "destination": _prop(pushed, "pushed_destination"),
            "version": _prop(pushed, "pushed_version"),
            "pushed_at": _time(pushed.create_time_since_epoch),
        })
    return pushes


def _model_record(graph: _Graph, model: mlmd_pb2.Artifact) -> Dict[str, Any]:
    trainer = graph.producer(model.id)
    evaluators = [x for x in graph.consumers(model.id, "model", fk.EVALUATOR_ID)
                  if x.last_known_state in _DONE_STATES]
    evaluation = _evaluation(graph, evaluators[-1]) if evaluators else None
    blessings = [_evaluation_blessed(graph, x) for x in evaluators]
    pushes = [p for p in _pushes_of(graph, model.id) if p["pushed"]]
    return {
        "model_id": model.id,
        "run_id": graph.run_of(trainer.id) if trainer else None,
        "uri": model.uri,
        "created": _time(model.create_time_since_epoch),
        "evaluated": evaluation is not None,
        "metrics": evaluation["metrics"] if evaluation else None,
        "baseline_model_id": evaluation["baseline_model_id"] if evaluation else None,
        "baseline_metrics": evaluation["baseline_metrics"] if evaluation else None,
        "validation_ok": evaluation["validation_ok"] if evaluation else None,
        "evaluation_id": evaluation["evaluation_id"] if evaluation else None,
        "blessed": any(b for b in blessings) if evaluators else None,
        "pushed": bool(pushes),
        "pushed_destination": pushes[-1]["destination"] if pushes else None,
        "pushed_version": pushes[-1]["version"] if pushes else None,
    }


def _evaluation_blessed(graph: _Graph, evaluator: mlmd_pb2.Execution) -> bool:
    blessing = _single(graph.outputs(evaluator.id, "blessing"))
    return bool(blessing is not None and _prop(blessing, "blessed", 0))


def list_models(store: metadata_store.MetadataStore) -> List[Dict[str, Any]]:
    """Each Model artifact, oldest first: its run, the TFMA metrics of its latest evaluation as
    the candidate (and the baseline's), blessed by any evaluation, pushed or not and where."""
    graph = _Graph(store)
    return [_model_record(graph, model) for model in graph.artifacts_of_type("Model")]


def _latest_evaluator(graph: _Graph) -> Optional[mlmd_pb2.Execution]:
    done = [x for x in graph.executions_of_node(fk.EVALUATOR_ID)
            if x.last_known_state in _DONE_STATES]
    return done[-1] if done else None


def _slice_sort_key(columns: Sequence[str]) -> Callable[[str], Tuple]:
    order = {column: i for i, column in enumerate(dict.fromkeys(columns))}

    def key(name: str) -> Tuple:
        if name == OVERALL:
            return (0, 0, 0, "")
        column, _, value = name.partition("=")
        number = re.match(r"-?\d+(\.\d+)?", value)
        return (1, order.get(column, len(order)), column,
                float(number.group()) if number else float("inf"), value)
    return key


def model_slices(store: metadata_store.MetadataStore,
                 model_id: Optional[int] = None) -> Dict[str, Any]:
    """The TFMA metrics of every slice for a model (default: the latest evaluated one), from
    the latest evaluation that took it as candidate. Raises LookupError when there is none."""
    graph = _Graph(store)
    if model_id is None:
        evaluator = _latest_evaluator(graph)
        if evaluator is None:
            raise LookupError("no model has been evaluated")
    else:
        if graph.artifact(model_id) is None:
            raise LookupError(f"no artifact with id {model_id}")
        evaluators = [x for x in graph.consumers(model_id, "model", fk.EVALUATOR_ID)
                      if x.last_known_state in _DONE_STATES]
        if not evaluators:
            raise LookupError(f"model {model_id} has not been evaluated")
        evaluator = evaluators[-1]
    evaluation = _evaluation(graph, evaluator, with_slices=True)
    by_slice = evaluation.pop("slices", {}) or {}
    slices = []
    for name in sorted(by_slice, key=_slice_sort_key(_slice_columns(evaluator))):
        roles = by_slice[name]
        slices.append({"slice": name, "metrics": roles.get("candidate", {}),
                       "baseline_metrics": roles.get("baseline")})
    evaluation["slices"] = slices
    return evaluation


def pushed_model(store: metadata_store.MetadataStore) -> Dict[str, Any]:
    """The currently pushed model (latest PushedModel with pushed=1): where, which Model, when;
    else `pushed` False and the reason from the latest push attempt. `latest_attempt` says why
    a later Pusher run did not replace the pushed model (None when it did not happen)."""
    graph = _Graph(store)
    pushed = [a for a in graph.artifacts_of_type("PushedModel") if _prop(a, "pushed", 0)]
    if not pushed:
        return {"pushed": False, "reason": _no_push_reason(graph)}
    latest = max(pushed, key=lambda a: (a.create_time_since_epoch, a.id))
    pusher = graph.producer(latest.id)
    model = _single(graph.inputs(pusher.id, "model")) if pusher else None
    destination = _prop(latest, "pushed_destination")
    pushers = graph.executions_of_node(fk.PUSHER_ID)
    last = pushers[-1] if pushers else None
    last_output = _single(graph.outputs(last.id, "pushed_model")) if last else None
    return {
        "pushed": True,
        "destination": destination,
        "destination_exists": bool(destination) and os.path.isdir(destination),
        "version": _prop(latest, "pushed_version"),
        "pushed_model_id": latest.id,
        "pushed_model_uri": latest.uri,
        "model_id": model.id if model else None,
        "model_uri": model.uri if model else None,
        "run_id": graph.run_of(pusher.id) if pusher else None,
        "pushed_at": _time(latest.create_time_since_epoch),
        "latest_attempt": (_pusher_reason(graph, last)
                           if last is not None and (last_output is None
                                                    or not _prop(last_output, "pushed", 0))
                           else None),
    }


def _pusher_reason(graph: _Graph, pusher: mlmd_pb2.Execution) -> str:
    """Why a Pusher execution pushed nothing: it failed, or its model was not blessed."""
    run_id = graph.run_of(pusher.id)
    if pusher.last_known_state in _FAILED_STATES:
        return f"the Pusher failed in run {run_id}"
    blessing = _single(graph.inputs(pusher.id, "model_blessing"))
    evaluator = graph.producer(blessing.id) if blessing else None
    if evaluator is not None:
        return f"run {run_id}: " + _not_blessed_reason(_evaluation(graph, evaluator))
    return f"the Pusher of run {run_id} pushed nothing"


def _no_push_reason(graph: _Graph) -> str:
    """Why nothing is pushed: the latest Pusher's model was not blessed, or no run got there."""
    pushers = graph.executions_of_node(fk.PUSHER_ID)
    if pushers:
        return _pusher_reason(graph, pushers[-1])
    run = graph.latest_run()
    if run is None:
        return "the pipeline has not run"
    record = _run_record(graph, run)
    if record["failed_node"]:
        return (f"no run reached the Pusher; the latest run {record['run_id']} failed at "
                f"{record['failed_node']}")
    return f"no run reached the Pusher (latest run {record['run_id']}: {record['status']})"


def lineage(store: metadata_store.MetadataStore,
            model_id: Optional[int] = None) -> Dict[str, Any]:
    """A model's provenance and fate (default: the pushed model, else the latest): Trainer
    execution and hyperparameters, Examples, ExampleGen input, Schema; evaluations, blessings
    and pushes. Raises LookupError when there is no such Model."""
    graph = _Graph(store)
    models = graph.artifacts_of_type("Model")
    if model_id is None:
        current = pushed_model(store)
        model_id = current.get("model_id") or (models[-1].id if models else None)
        if model_id is None:
            raise LookupError("no Model artifact in this store")
    model = graph.artifact(model_id)
    if model is None or graph.type_name(model) != "Model":
        raise LookupError(f"no Model artifact with id {model_id}")

    result: Dict[str, Any] = {"model": {"id": model.id, "uri": model.uri,
                                        "created": _time(model.create_time_since_epoch)}}
    trainer = graph.producer(model.id)
    result["trainer"] = _trainer_record(graph, trainer) if trainer else None
    examples = _single(graph.inputs(trainer.id, "examples")) if trainer else None
    schema = _single(graph.inputs(trainer.id, "schema")) if trainer else None
    result["examples"] = _examples_record(graph, examples) if examples else None
    example_gen = graph.producer(examples.id) if examples else None
    result["example_gen"] = _example_gen_record(graph, example_gen) if example_gen else None
    result["schema"] = _schema_record(graph, schema) if schema else None

    evaluations = []
    for evaluator in graph.consumers(model.id, "model", fk.EVALUATOR_ID):
        record = _evaluation(graph, evaluator)
        evaluations.append({key: record[key] for key in (
            "evaluator_execution_id", "run_id", "state", "evaluation_id", "evaluation_uri",
            "metrics", "baseline_model_id", "validation_ok", "blessing_id", "blessed")})
    result["evaluations"] = evaluations
    result["pushes"] = _pushes_of(graph, model.id)
    return result


def _trainer_record(graph: _Graph, trainer: mlmd_pb2.Execution) -> Dict[str, Any]:
    custom_config = _json_prop(trainer, "custom_config") or {}
    model_run = _single(graph.outputs(trainer.id, "model_run"))
    record: Dict[str, Any] = {
        "execution_id": trainer.id,
        "run_id": graph.run_of(trainer.id),
        "state": _state(trainer),
        "started": _time(trainer.create_time_since_epoch),
        "duration_s": _duration_s([trainer]),
        "run_fn": _prop(trainer, "run_fn"),
        "hparam_overrides": custom_config.get("hparams", {}),
        "model_code": custom_config.get("model_code"),
        "model_run_id": model_run.id if model_run else None,
        "model_run_uri": model_run.uri if model_run else None,
        "hparams": None,
        "final_metrics": None,
    }
    report = _read_json(os.path.join(model_run.uri, "metrics.json")) if model_run else None
    if isinstance(report, dict):
        record["hparams"] = report.get("hparams")
        record["final_metrics"] = report.get("final")
    return record


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _examples_record(graph: _Graph, examples: mlmd_pb2.Artifact) -> Dict[str, Any]:
    return {"id": examples.id, "uri": examples.uri,
            "span": _prop(examples, "span"),
            "input_fingerprint": _prop(examples, "input_fingerprint"),
            **_artifact_details(graph, examples)}


def _example_gen_record(graph: _Graph, execution: mlmd_pb2.Execution) -> Dict[str, Any]:
    input_config = _json_prop(execution, "input_config") or {}
    return {
        "execution_id": execution.id,
        "node_id": graph.node_of(execution.id),
        "run_id": graph.run_of(execution.id),
        "state": _state(execution),
        "input_base": _prop(execution, "input_base"),
        "input_patterns": {s.get("name", ""): s.get("pattern")
                           for s in input_config.get("splits", [])},
        "output_config": _json_prop(execution, "output_config"),
        "malformed_lines": _prop(execution, "malformed_lines"),
    }


def _schema_record(graph: _Graph, schema: mlmd_pb2.Artifact) -> Dict[str, Any]:
    producer = graph.producer(schema.id)
    return {"id": schema.id, "uri": schema.uri,
            "node_id": graph.node_of(producer.id) if producer else None,
            "schema_file": _prop(producer, "schema_file") if producer else None}


def _failure_message(graph: _Graph, execution: mlmd_pb2.Execution) -> Optional[str]:
    """What a failed execution recorded; for the anomalies gate, the anomalies it stopped on."""
    result = _json_prop(execution, "__execution_result__")
    if isinstance(result, dict) and result.get("resultMessage"):
        return str(result["resultMessage"]).strip().splitlines()[-1]
    if graph.node_of(execution.id) == fk.ANOMALIES_GATE_ID:
        anomalies = _single(graph.inputs(execution.id, "anomalies"))
        if anomalies is not None:
            lines = _anomaly_lines(anomalies)
            if lines:
                return "data anomalies: " + "; ".join(lines)
    return None


def _anomaly_lines(anomalies: mlmd_pb2.Artifact) -> List[str]:
    """One line per anomaly in every split of an ExampleAnomalies artifact ([] if unreadable)."""
    try:
        from components.anomalies_gate.component import describe_anomalies, read_anomalies

        lines: List[str] = []
        for split in json.loads(_prop(anomalies, "split_names", "[]")):
            lines += describe_anomalies(read_anomalies(anomalies.uri, split), split)
        return lines
    except Exception:  # noqa: BLE001  (the summary goes on without the details)
        return []


def latest_run_summary(store: metadata_store.MetadataStore) -> Dict[str, Any]:
    """A short account of the latest run, for the end of a run: status, eval metrics, blessed,
    pushed path or why not. Works for a run that stopped anywhere (fields are then None)."""
    graph = _Graph(store)
    run = graph.latest_run()
    summary: Dict[str, Any] = {
        "run_id": None, "status": NO_RUNS, "started": None, "duration_s": None,
        "cached": 0, "failed_node": None, "failure": None, "model_id": None,
        "eval_rmse": None, "eval_mae": None, "eval_example_count": None,
        "blessed": None, "pushed_path": None, "not_pushed_reason": None,
    }
    if run is None:
        summary["not_pushed_reason"] = "the pipeline has not run"
        return summary
    record = _run_record(graph, run)
    summary.update({key: record[key] for key in (
        "run_id", "status", "started", "duration_s", "cached", "failed_node")})
    if record["failed_node"]:
        failed = _latest_of_node(graph, run, record["failed_node"])
        summary["failure"] = _failure_message(graph, failed) if failed else None

    trainer = _latest_of_node(graph, run, fk.TRAINER_ID)
    model = _single(graph.outputs(trainer.id, "model")) if trainer else None
    summary["model_id"] = model.id if model else None
    evaluator = _latest_of_node(graph, run, fk.EVALUATOR_ID)
    evaluation = (_evaluation(graph, evaluator)
                  if evaluator is not None and evaluator.last_known_state in _DONE_STATES
                  else None)
    if evaluation is not None:
        metrics = evaluation["metrics"] or {}
        count = metrics.get(EXAMPLE_COUNT)
        summary.update(eval_rmse=metrics.get(RMSE), eval_mae=metrics.get(MAE),
                       eval_example_count=None if count is None else int(count),
                       blessed=evaluation["blessed"])
        if evaluation.get("metrics_error"):
            summary["metrics_error"] = evaluation["metrics_error"]

    pusher = _latest_of_node(graph, run, fk.PUSHER_ID)
    pushed = _single(graph.outputs(pusher.id, "pushed_model")) if pusher else None
    if pushed is not None and _prop(pushed, "pushed", 0):
        summary["pushed_path"] = _prop(pushed, "pushed_destination")
    elif evaluation is not None and evaluation["blessed"] is False:
        summary["not_pushed_reason"] = _not_blessed_reason(evaluation)
    elif record["failed_node"]:
        summary["not_pushed_reason"] = f"the run failed at {record['failed_node']}"
    elif record["status"] == RUNNING:
        summary["not_pushed_reason"] = "the run has not finished (or was interrupted)"
    elif pusher is None:
        summary["not_pushed_reason"] = "the run has no Pusher (e.g. --validate-only)"
    else:
        summary["not_pushed_reason"] = "the Pusher pushed nothing"
    return summary


# ---------------------------------------------------------------------------------------------
# Text output.


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                 indent: str = "") -> str:
    """An aligned plain-text table; cells go through the same formatting as everywhere."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [indent + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
              for r in cells]
    return "\n".join(lines)


def _print_pairs(pairs: Sequence[Tuple[str, Any]], indent: str = "") -> None:
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        print(f"{indent}{key.ljust(width)}  {_fmt(value)}")


def _print_runs(runs: List[Dict[str, Any]]) -> None:
    if not runs:
        print("no pipeline runs")
        return
    for i, run in enumerate(runs):
        if i:
            print()
        print(f"run {run['run_id']}  {run['status']}  started {_fmt(run['started'])}  "
              f"took {_duration(run['duration_s'])}  ({run['executions']} executions, "
              f"{run['cached']} from cache)")
        print(format_table(
            ["NODE", "STATE", "EXECUTION", "STARTED", "DURATION"],
            [[n["node_id"], n["state"], n["execution_id"], n["started"],
              _duration(n["duration_s"])] for n in run["nodes"]], indent="  "))
        if run["not_run"]:
            print(f"  not run: {', '.join(run['not_run'])}")


def _details_text(row: Dict[str, Any]) -> str:
    parts = []
    for key in ("splits", "rejected_lines", "blessed", "model_id", "pushed", "destination"):
        if key in row and row[key] is not None:
            parts.append(f"{key}={_fmt(row[key])}")
    return " ".join(parts)


def _print_artifacts(rows: List[Dict[str, Any]]) -> None:
    if not rows:
        print("no artifacts")
        return
    runs = list(dict.fromkeys(r["run_id"] for r in rows))
    for i, run_id in enumerate(runs):
        if i:
            print()
        print(f"run {run_id}")
        print(format_table(
            ["NODE", "KEY", "TYPE", "ID", "STATE", "ORIGIN", "URI", "DETAILS"],
            [[r["node_id"], r["key"], r["type"], r["artifact_id"], r["state"], r["origin"],
              r["uri"], _details_text(r)]
             for r in rows if r["run_id"] == run_id], indent="  "))


def _metric(record: Optional[Dict[str, float]], name: str) -> Optional[float]:
    return (record or {}).get(name)


def _count(record: Optional[Dict[str, float]]) -> Optional[int]:
    value = _metric(record, EXAMPLE_COUNT)
    return None if value is None else int(value)


def _print_models(models: List[Dict[str, Any]]) -> None:
    if not models:
        print("no models")
        return
    print(format_table(
        ["MODEL", "RUN", "RMSE", "MAE", "MSE", "EXAMPLES", "BASELINE", "BASE RMSE",
         "VALID", "BLESSED", "PUSHED", "PUSHED TO", "URI"],
        [[m["model_id"], m["run_id"], _metric(m["metrics"], RMSE), _metric(m["metrics"], MAE),
          _metric(m["metrics"], MSE), _count(m["metrics"]),
          m["baseline_model_id"], _metric(m["baseline_metrics"], RMSE), m["validation_ok"],
          m["blessed"], m["pushed"], m["pushed_destination"], m["uri"]] for m in models]))


def _print_slices(result: Dict[str, Any]) -> None:
    print(f"model {result['model_id']}  evaluation {result['evaluation_id']}  "
          f"run {result['run_id']}  {result['evaluation_uri']}")
    with_baseline = any(s["baseline_metrics"] for s in result["slices"])
    headers = ["SLICE", "EXAMPLES", "RMSE", "MAE", "MSE"]
    headers += ["BASE RMSE"] if with_baseline else []
    rows = []
    for s in result["slices"]:
        row = [s["slice"], _count(s["metrics"]), _metric(s["metrics"], RMSE),
               _metric(s["metrics"], MAE), _metric(s["metrics"], MSE)]
        rows.append(row + ([_metric(s["baseline_metrics"], RMSE)] if with_baseline else []))
    print(format_table(headers, rows))
    if result.get("metrics_error"):
        print(f"could not read the evaluation: {result['metrics_error']}")


def _print_pushed(result: Dict[str, Any]) -> None:
    if not result["pushed"]:
        print(f"no model has been pushed: {result['reason']}")
        return
    _print_pairs([
        ("destination", result["destination"]),
        ("version", result["version"]),
        ("model", result["model_id"]),
        ("model uri", result["model_uri"]),
        ("run", result["run_id"]),
        ("pushed at", result["pushed_at"]),
    ])
    if not result["destination_exists"]:
        print("warning: the destination folder no longer exists")
    if result["latest_attempt"]:
        print(f"not replaced by the latest attempt: {result['latest_attempt']}")


def _print_lineage(result: Dict[str, Any]) -> None:
    model = result["model"]
    print(f"Model {model['id']}  {model['uri']}  (created {model['created']})")
    trainer = result["trainer"]
    if trainer:
        print(f"  <- {fk.TRAINER_ID} execution {trainer['execution_id']}  run {trainer['run_id']}"
              f"  {trainer['state']}  took {_duration(trainer['duration_s'])}")
        overrides = trainer["hparam_overrides"] or {}
        print(f"       hparam overrides: "
              f"{', '.join(f'{k}={v}' for k, v in overrides.items()) or 'none'}")
        if trainer["hparams"]:
            print(f"       hparams: "
                  f"{', '.join(f'{k}={v}' for k, v in trainer['hparams'].items())}")
        print(f"       model code {trainer['model_code']}  run_fn {trainer['run_fn']}")
        final = trainer["final_metrics"] or {}
        for split, values in final.items():
            print(f"       trainer {split}: RMSE {_fmt(values.get('rmse'))}  "
                  f"MAE {_fmt(values.get('mae'))}  ({values.get('examples')} examples)")
    examples = result["examples"]
    if examples:
        print(f"  <- Examples {examples['id']}  {examples['uri']}  "
              f"splits {_fmt(examples.get('splits'))}  "
              f"rejected_lines {_fmt(examples.get('rejected_lines'))}")
    gen = result["example_gen"]
    if gen:
        patterns = ", ".join(f"{k}: {v}" for k, v in gen["input_patterns"].items())
        print(f"  <- {gen['node_id']} execution {gen['execution_id']}  run {gen['run_id']}  "
              f"input_base {gen['input_base']}  pattern {patterns or '-'}  "
              f"malformed_lines {_fmt(gen['malformed_lines'])}")
    schema = result["schema"]
    if schema:
        print(f"  <- Schema {schema['id']}  {schema['uri']}  "
              f"(from {schema['schema_file']} by {schema['node_id']})")
    for evaluation in result["evaluations"]:
        print(f"  -> {fk.EVALUATOR_ID} execution {evaluation['evaluator_execution_id']}  run "
              f"{evaluation['run_id']}  ModelEvaluation {_fmt(evaluation['evaluation_id'])}  "
              f"RMSE {_fmt(_metric(evaluation['metrics'], RMSE))}  "
              f"baseline {_fmt(evaluation['baseline_model_id'])}  "
              f"ModelBlessing {_fmt(evaluation['blessing_id'])} "
              f"blessed {_fmt(evaluation['blessed'])}")
    for push in result["pushes"]:
        where = f" to {push['destination']}" if push["pushed"] else ""
        print(f"  -> {fk.PUSHER_ID} execution {push['pusher_execution_id']}  run "
              f"{push['run_id']}  PushedModel {push['pushed_model_id']}  "
              f"pushed {_fmt(push['pushed'])}{where}")
    if not result["evaluations"]:
        print("  (never evaluated)")


def _print_summary(result: Dict[str, Any]) -> None:
    run = result["latest_run"]
    print("latest run")
    _print_pairs([
        ("run", run["run_id"]),
        ("status", run["status"] + (f" at {run['failed_node']}" if run["failed_node"] else "")),
        ("started", run["started"]),
        ("duration", _duration(run["duration_s"])),
        ("from cache", f"{run['cached']} executions"),
        ("model", run["model_id"]),
        ("eval RMSE", run["eval_rmse"]),
        ("eval MAE", run["eval_mae"]),
        ("eval examples", run["eval_example_count"]),
        ("blessed", run["blessed"]),
        ("pushed to", run["pushed_path"]),
    ] + ([("failure", run["failure"])] if run["failure"] else [])
      + ([("not pushed", run["not_pushed_reason"])] if run["not_pushed_reason"] else []),
        indent="  ")
    print("serving")
    current = result["pushed"]
    if current["pushed"]:
        _print_pairs([("model", current["model_id"]), ("destination", current["destination"]),
                      ("pushed at", current["pushed_at"]), ("run", current["run_id"])],
                     indent="  ")
    elif run["not_pushed_reason"] and current["reason"].endswith(run["not_pushed_reason"]):
        print("  no model has been pushed (see above)")
    else:
        print(f"  no model has been pushed: {current['reason']}")


# ---------------------------------------------------------------------------------------------
# Command line.


def _summary(store: metadata_store.MetadataStore) -> Dict[str, Any]:
    return {"latest_run": latest_run_summary(store), "pushed": pushed_model(store)}


_COMMANDS: Dict[str, Tuple[str, Callable[..., Any], Callable[[Any], None]]] = {
    "summary": ("the latest run and the pushed model (default)",
                lambda store, args: _summary(store), _print_summary),
    "runs": ("every pipeline run: status, cache use, timing, each node's state",
             lambda store, args: list_runs(store), _print_runs),
    "artifacts": ("the artifacts each node output, per run",
                  lambda store, args: list_artifacts(store, args.run), _print_artifacts),
    "models": ("each Model: evaluation metrics, blessed, pushed",
               lambda store, args: list_models(store), _print_models),
    "slices": ("TFMA metrics per slice for a model (default: the latest evaluated)",
               lambda store, args: model_slices(store, args.model), _print_slices),
    "pushed": ("the currently pushed model, or why there is none",
               lambda store, args: pushed_model(store), _print_pushed),
    "lineage": ("a model's inputs and what became of it (default: the pushed one)",
                lambda store, args: lineage(store, args.model), _print_lineage),
}


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--home", metavar="DIR",
                        help=f"pipeline home (default: ${configs.HOME_ENV}, else "
                             f"./{configs.DEFAULT_HOME})")
    common.add_argument("--metadata", metavar="PATH",
                        help="ML Metadata SQLite file (default: DIR/metadata.sqlite; "
                             "overrides --home)")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser = argparse.ArgumentParser(
        prog="kiko inspect", parents=[common],
        description="Inspect the kiko pipeline's ML Metadata: runs, artifacts, models, "
                    "slice metrics, pushes and lineage.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, _, _) in _COMMANDS.items():
        sub = commands.add_parser(name, help=help_, description=help_, parents=[common])
        if name == "artifacts":
            sub.add_argument("--run", default=None, metavar="RUN_ID",
                             help="only this run (default: every run)")
        if name in ("slices", "lineage"):
            sub.add_argument("--model", type=int, default=None, metavar="ID",
                             help="Model artifact id (see `models`)")
    return parser


def _quiet_libraries() -> None:
    """Keeps TensorFlow's start-up chatter and deprecation notes (it loads with TFMA) off the
    command's stderr; a process that already loaded TensorFlow keeps its own settings."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)


def main(argv: Optional[List[str]] = None) -> int:
    """Runs one inspect command; 0 on success, 2 for a missing or unreadable store or an unknown
    run or model id."""
    args = _parser().parse_args(argv)
    command = args.command or "summary"
    metadata_path = getattr(args, "metadata", None) or configs.Paths(
        configs.home_dir(getattr(args, "home", ""))).metadata_path
    _quiet_libraries()
    try:
        store = open_store(metadata_path)
        _, gather, show = _COMMANDS[command]
        data = gather(store, args)
    except (FileNotFoundError, StoreError, LookupError) as error:
        print(f"inspect: {error}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
    else:
        show(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
