"""What the Evaluator found: TFMA metrics overall and per slice (candidate and baseline), the
EvalConfig's thresholds, validation failures and the blessing, read with TFMA's own loaders
(`tfma.load_eval_result`, `tfma.load_validation_result`); and why a model was not blessed."""

import re
from typing import Any, Dict, List, Optional

from google.protobuf import json_format
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from kiko.metadata.store import State, Store, custom, exec_properties, first, succeeded
from kiko.model import features as fk
from kiko.pipeline import nodes

# TFMA metric names as the Evaluator records them.
RMSE, MSE, MAE = fk.RMSE_NAME, fk.MSE_NAME, fk.MAE_NAME
EXAMPLE_COUNT = "example_count"
OVERALL = "overall"
_MAX_LISTED_FAILURES = 5


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
    candidate, baseline = first(inputs, "model"), first(inputs, "baseline_model")
    result_artifact, blessing = first(outputs, "evaluation"), first(outputs, "blessing")
    config = json_format.Parse(exec_properties(evaluator).get("eval_config") or "{}",
                               tfma.EvalConfig(), ignore_unknown_fields=True)
    info: Dict[str, Any] = {
        "evaluator_execution_id": evaluator.id, "run_id": store.run_of(evaluator.id),
        "state": State.Name(evaluator.last_known_state),
        "model_id": candidate.id if candidate else None,
        "baseline_model_id": baseline.id if baseline else None,
        "evaluation_id": result_artifact.id if result_artifact else None,
        "evaluation_uri": result_artifact.uri if result_artifact else None,
        "metrics": None, "baseline_metrics": None, "validation_ok": None,
        "validation_failures": [], "thresholds": _thresholds(config),
        "blessing_id": blessing.id if blessing else None,
        "blessed": bool(custom(blessing, "blessed", 0)) if blessing else None,
    }
    if result_artifact is None or not succeeded(evaluator):
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


def evaluations_of(store: Store, model_id: int) -> List[mlmd_pb2.Execution]:
    """Finished Evaluator executions that scored the model as the candidate, oldest first."""
    return [x for x in store.executions(node=nodes.EVALUATOR_ID, input_of=model_id)
            if succeeded(x) and getattr(first(store.inputs(x.id), "model"), "id", None)
            == model_id]


def model_slices(store: Store, model_id: Optional[int] = None) -> Dict[str, Any]:
    """TFMA metrics of every slice for a model (default: the latest evaluated one), from the
    latest evaluation that took it as candidate. LookupError when there is none."""
    if model_id is None:
        evaluators = [x for x in store.executions(node=nodes.EVALUATOR_ID) if succeeded(x)]
        if not evaluators:
            raise LookupError("no model has been evaluated")
    else:
        if store.artifact(model_id) is None:
            raise LookupError(f"no artifact with id {model_id}")
        evaluators = evaluations_of(store, model_id)
        if not evaluators:
            raise LookupError(f"model {model_id} has not been evaluated")
    return evaluation(store, evaluators[-1], with_slices=True)
