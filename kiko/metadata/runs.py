"""The pipeline's runs: each run's status and nodes, what a failed node recorded, the artifacts
a run made, why it pushed no model, and the short account of a run that `kiko inspect` shows
and a local run prints at its end."""

import re
from typing import Any, Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
from tfx.orchestration.portable.mlmd import execution_lib

from kiko.components.movielens_example_gen.errors import user_line
from kiko.metadata.artifacts import anomaly_lines, data_quality
from kiko.metadata.evaluation import (
    EXAMPLE_COUNT, MAE, RMSE, evaluation, not_blessed_reason)
from kiko.metadata.store import (
    NODE_ORDER, State, Store, custom, duration_s, failed, first, in_node_order, moment,
    parse_json, succeeded)
from kiko.metadata.training import (
    BASE_MODEL_KEY, read_model_run, training_members, training_start)
from kiko.pipeline import nodes
from kiko.pipeline.recovery import FAILURE, STOPPED_MS

# Run statuses.
COMPLETE, FAILED, RUNNING, NO_RUNS = "COMPLETE", "FAILED", "RUNNING", "NO RUNS"
CANCELED = "CANCELED"  # a signal stopped the runner (pipeline.recovery.cancel_run)


def _ran_s(executions) -> Optional[float]:
    """duration_s, ending a stopped execution when its runner was last seen at work (recorded
    by pipeline.recovery), not when it was marked failed or cancelled."""
    if not any(STOPPED_MS in x.custom_properties for x in executions):
        return duration_s(executions)
    ends = [x.custom_properties[STOPPED_MS].int_value if STOPPED_MS in x.custom_properties
            else x.last_update_time_since_epoch for x in executions]
    return round((max(ends) - min(x.create_time_since_epoch for x in executions)) / 1000, 3)


def _run_record(store: Store, run: mlmd_pb2.Context) -> Dict[str, Any]:
    executions = sorted(store.mlmd.get_executions_by_context(run.id), key=lambda x: x.id)
    by_node = {store.node_of(x.id): x for x in executions}
    rows = [{"node_id": node, "state": State.Name(x.last_known_state), "execution_id": x.id,
             "started": moment(x.create_time_since_epoch), "duration_s": duration_s([x])}
            for node, x in ((n, by_node[n]) for n in in_node_order(by_node))]
    for row in rows:
        row["duration_s"] = _ran_s([by_node[row["node_id"]]])
    failed_nodes = [r["node_id"] for r in rows if failed(by_node[r["node_id"]])]
    stopped = run.custom_properties[FAILURE].string_value if FAILURE in run.custom_properties \
        else None  # the line told when a signal stopped the run (pipeline.recovery)
    if stopped is not None:
        status = CANCELED
    elif failed_nodes:
        status = CANCELED if by_node[failed_nodes[0]].last_known_state == State.CANCELED \
            else FAILED
    elif not executions or not all(succeeded(x) for x in executions):
        status = RUNNING  # still running, or interrupted
    else:
        status = COMPLETE
    not_run = [] if status == COMPLETE else [
        n for n in in_node_order(list(NODE_ORDER) + store.node_ids()) if n not in by_node]
    return {
        "run_id": run.name, "status": status, "executions": len(executions),
        "cached": sum(x.last_known_state == State.CACHED for x in executions),
        "started": moment(min((x.create_time_since_epoch for x in executions), default=0)),
        "duration_s": _ran_s(executions),
        "failed_node": failed_nodes[0] if failed_nodes else None, "nodes": rows,
        "not_run": not_run, "stopped": stopped,
    }


def list_runs(store: Store) -> List[Dict[str, Any]]:
    """Every pipeline run, oldest first: status, cache use, timing and each node's state; for a
    run that did not complete, `not_run` names the pipeline nodes it never reached."""
    return [_run_record(store, run) for run in store.runs()]


# The gate's errors name every anomaly or drift measure, one per line.
_GATE_ERROR = re.compile(r"^(?:[\w.]+\.)?(?:DataAnomaliesError|DataDriftError): ", re.M)


def _gate_error(recorded: str) -> Optional[str]:
    """The gate's whole error message in a recorded traceback, its lines joined into one;
    None when the gate failed otherwise."""
    found = list(_GATE_ERROR.finditer(recorded))
    if not found:
        return None
    lines = [line.strip() for line in recorded[found[-1].end():].splitlines() if line.strip()]
    text = lines[0]
    for line in lines[1:]:
        text += (" " if text.endswith(":") else "; ") + line
    return text


def failure_message(store: Store, run_id: str, node: str) -> Optional[str]:
    """What a failed node recorded (TFX's execution result); for the anomalies gate, the
    anomalies or drift it stopped on."""
    executions = store.executions(node=node, run=run_id)
    if not executions:
        return None
    result = execution_lib.get_execution_result(executions[-1], ignore_parse_errors=True)
    recorded = executions[-1].custom_properties
    # The line the runner told at the run's end.
    told = recorded[FAILURE].string_value if FAILURE in recorded else None
    if result is not None and result.result_message.strip():
        gate_error = _gate_error(result.result_message) if node == nodes.ANOMALIES_GATE_ID \
            else None
        return gate_error or told or user_line(result.result_message)
    if told:
        return told
    if node == nodes.ANOMALIES_GATE_ID:
        inputs = store.inputs(executions[-1].id)
        lines = anomaly_lines(first(inputs, "anomalies"), first(inputs, "examples"))
        return "data anomalies: " + "; ".join(lines) if lines else None
    return None


def why_not_pushed(store: Store, run_id: Optional[str] = None) -> Optional[str]:
    """The one place that says why a run (default: the latest) pushed no model; None if it did."""
    run = store.run(run_id)
    if run is None:
        return "the pipeline has not run"
    record = _run_record(store, run)
    pushers = store.executions(node=nodes.PUSHER_ID, run=run.name)
    if pushers and succeeded(pushers[-1]):
        if custom(first(store.outputs(pushers[-1].id), "pushed_model"), "pushed", 0):
            return None
        evaluators = [x for x in store.executions(node=nodes.EVALUATOR_ID, run=run.name)
                      if succeeded(x)]
        result = evaluation(store, evaluators[-1]) if evaluators else None
        if result is not None and result["blessed"] is False:
            return not_blessed_reason(result)
        return f"the Pusher of run {run.name} pushed nothing"
    if record["stopped"]:
        return f"run {run.name} was stopped: {record['stopped']}"
    if record["failed_node"]:
        failure = failure_message(store, run.name, record["failed_node"])
        return f"run {run.name} failed at {record['failed_node']}" + (
            f": {failure}" if failure else "")
    if record["status"] == RUNNING:
        return f"run {run.name} has not finished (or was interrupted)"
    return f"run {run.name} has no Pusher (e.g. --validate-only)"


def trainer_start(store: Store, trainer: mlmd_pb2.Execution) -> Optional[Dict[str, Any]]:
    """training_start of a Trainer execution: its ModelRun's record and its base model input."""
    model_run = first(store.outputs(trainer.id), "model_run")
    return training_start(read_model_run(model_run.uri if model_run else None),
                          first(store.inputs(trainer.id), BASE_MODEL_KEY))


def run_outputs(store: Store, run_id: str) -> Dict[str, Any]:
    """The latest artifact of each kind one run used or made (None where the run got nowhere)."""
    found: Dict[str, Any] = {}
    for node, key in ((nodes.EXAMPLE_GEN_ID, "examples"), (nodes.STATISTICS_GEN_ID, "statistics"),
                      (nodes.EXAMPLE_VALIDATOR_ID, "anomalies"),
                      (nodes.ANOMALIES_GATE_ID, "verdict"), (nodes.TRAINER_ID, "model"),
                      (nodes.TRAINER_ID, "model_run"), (nodes.EVALUATOR_ID, "evaluation"),
                      (nodes.PUSHER_ID, "pushed_model")):
        executions = [x for x in store.executions(node=node, run=run_id) if succeeded(x)]
        artifacts = store.outputs(executions[-1].id) if executions else {}
        found[key] = first(artifacts, key)
        if node == nodes.EVALUATOR_ID:
            found["evaluator"] = executions[-1] if executions else None
        if node == nodes.TRAINER_ID:
            inputs = store.inputs(executions[-1].id) if executions else {}
            found["window"] = list(inputs.get("examples", []))
            found[BASE_MODEL_KEY] = first(inputs, BASE_MODEL_KEY)
    return found


def span_lines(found: Dict[str, Any]) -> Dict[str, Any]:
    """The span a run ingested, the spans its Trainer read and the data gate's drift verdict."""
    examples, verdict = found["examples"], found["verdict"]
    info: Dict[str, Any] = {"span": None, "version": None, "window": None, "drift": None}
    if examples is not None:
        info["span"], info["version"] = custom(examples, "span"), custom(examples, "version")
    if found.get("window"):
        info["window"] = sorted(custom(a, "span") for a in found["window"])
    if verdict is not None:
        info["drift"] = {"verdict": custom(verdict, "verdict"),
                         **(parse_json(custom(verdict, "drift")) or {})}
    return info


def run_summary(store: Store, run_id: Optional[str] = None) -> Dict[str, Any]:
    """A short account of one run (default: the latest): status, data quality, how training
    started (training_start), eval metrics, blend, blessed, pushed path or why not. Fields are
    None where the run did not get."""
    summary: Dict[str, Any] = dict.fromkeys((
        "run_id", "started", "duration_s", "failed_node", "failure", "model_id", "eval_rmse",
        "eval_mae", "eval_example_count", "blessed", "pushed_path", "not_pushed_reason",
        "rejected_lines", "data_quality", "blend", "skipped_members", "span", "version",
        "window", "drift", "served_rmse", "served_mae", "served_model_id", "start"))
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
    summary["failure"] = record["stopped"] or summary["failure"]
    found = run_outputs(store, run.name)
    summary.update(span_lines(found))
    # Every step served from cache: the newest span had been ingested and nothing changed.
    executors = [n for n in record["nodes"] if n["node_id"] not in nodes.RESOLVER_IDS]
    summary["nothing_new"] = (record["status"] == COMPLETE and bool(executors)
                              and all(n["state"] == "CACHED" for n in executors))
    if found["examples"] is not None:
        summary["rejected_lines"] = custom(found["examples"], "rejected_lines")
        summary["data_quality"] = data_quality(found["examples"])
    summary["model_id"] = found["model"].id if found["model"] is not None else None
    report = read_model_run(found["model_run"].uri if found["model_run"] else None) or {}
    training = training_members(report)
    summary["blend"], summary["skipped_members"] = training["blend"], training["skipped"] or None
    summary["start"] = training_start(report, found[BASE_MODEL_KEY])
    if found["evaluator"] is not None:
        result = evaluation(store, found["evaluator"])
        metrics = result["metrics"] or {}
        count = metrics.get(EXAMPLE_COUNT)
        served = result.get("baseline_metrics") or {}
        summary.update(served_rmse=served.get(RMSE), served_mae=served.get(MAE),
                       served_model_id=result.get("baseline_model_id"))
        summary.update(eval_rmse=metrics.get(RMSE), eval_mae=metrics.get(MAE),
                       eval_example_count=None if count is None else int(count),
                       blessed=result["blessed"])
        if result.get("metrics_error"):
            summary["metrics_error"] = result["metrics_error"]
    if found["pushed_model"] is not None and custom(found["pushed_model"], "pushed", 0):
        summary["pushed_path"] = custom(found["pushed_model"], "pushed_destination")
    else:
        summary["not_pushed_reason"] = why_not_pushed(store, run.name)
    return summary
