"""The spans a pipeline ingested and the model over them: per Examples artifact of the
ExampleGen (one span, one version), its size, the data gate's verdict and drift measures, the
runs that trained on it; per evaluation, the candidate's and the served model's scores on the
newest span, and how each candidate's training started (warm from a base model or cold).

The gate's SpanVerdict (custom properties `examples_id`, `verdict`, `drift`) says a span was let
through; a span the gate stopped has no verdict, only the gate's failed execution.
"""

from typing import Any, Dict, List, Optional

from kiko.components.anomalies_gate.verdicts import SPAN_VERDICT_TYPE
from kiko.metadata.artifacts import data_quality
from kiko.metadata.evaluation import EXAMPLE_COUNT, MAE, RMSE, evaluation
from kiko.metadata.models import pushes_of
from kiko.metadata.runs import failure_message, trainer_start
from kiko.metadata.store import (
    Store, custom, failed, moment, parse_json, succeeded)
from kiko.pipeline import nodes

# The SpanVerdict artifact type (kiko.components.anomalies_gate.component.SpanVerdict).
# Drift verdicts of a span beside the gate's own (passed, first_span, drift_warned).
STOPPED = "stopped"  # the gate failed on it: no verdict
NOT_CHECKED = "not checked"  # the gate has not judged it (the run ended before, or is running)


def _examples_of_example_gen(store: Store) -> list:
    """Each Examples artifact a finished ExampleGen execution output, newest first."""
    found: Dict[int, Any] = {}
    for execution in store.executions(node=nodes.EXAMPLE_GEN_ID):
        if succeeded(execution):
            for artifact in store.outputs(execution.id).get("examples", []):
                found[artifact.id] = artifact
    return [found[i] for i in sorted(found, reverse=True)]


def _verdicts_by_examples(store: Store) -> Dict[int, Any]:
    """examples_id -> the newest SpanVerdict on it."""
    return {custom(v, "examples_id"): v
            for v in store.artifacts(f'type = "{SPAN_VERDICT_TYPE}"')}


def severity(measure: Dict[str, Any]) -> float:
    """How close a drift measure is to its threshold: value over threshold (a range
    `low..high`: the larger of low/value and value/high); 1 is at the threshold."""
    value, threshold = measure.get("value"), measure.get("threshold")
    if not isinstance(value, (int, float)):
        return 0.0
    if isinstance(threshold, str) and ".." in threshold:
        try:
            low, high = (float(t) for t in threshold.split("..", 1))
        except ValueError:
            return 0.0
        if value <= 0:
            return float("inf") if low > 0 else 0.0
        return max(low / value, value / high if high > 0 else float("inf"))
    if isinstance(threshold, (int, float)) and threshold > 0:
        return value / threshold
    return float("inf") if measure.get("exceeded") else 0.0


def largest_measure(measures: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The exceeded measure, or else the one nearest its threshold (None without measures)."""
    return max(measures, key=lambda m: (bool(m.get("exceeded")), severity(m)), default=None)


# Short names of the gate's drift measures (kiko.components.anomalies_gate.drift).
SHORT_MEASURE_NAMES = {"jensen_shannon_divergence": "JSD", "unseen_fraction": "unseen",
          "count_ratio": "count ratio"}


def measure_text(measure: Dict[str, Any]) -> str:
    """A drift measure against its threshold in a few words: `rating JSD 0.0040 <= 0.05`,
    `user_id unseen 0.9000 > 0.3`, `(examples) count ratio 1.0200 in 0.2..5`."""
    value, threshold = measure.get("value"), measure.get("threshold")
    kind = measure.get("measure")
    name = f"{measure.get('feature')} {SHORT_MEASURE_NAMES.get(kind, kind)}"
    shown = f"{value:.4f}" if isinstance(value, (int, float)) else str(value)
    exceeded = bool(measure.get("exceeded"))
    if isinstance(threshold, str):
        return f"{name} {shown} {'outside' if exceeded else 'in'} {threshold}"
    limit = f"{threshold:g}" if isinstance(threshold, (int, float)) else str(threshold)
    return f"{name} {shown} {'>' if exceeded else '<='} {limit}"


def _gate_outcome(store: Store, examples, verdict) -> Dict[str, Any]:
    """The verdict, drift and (for a stopped span) the gate's failure of one Examples."""
    if verdict is not None:
        drift = parse_json(custom(verdict, "drift")) or {}
        return {"verdict": custom(verdict, "verdict"), "verdict_id": verdict.id,
                "baseline_span": drift.get("baseline_span", custom(verdict, "baseline_span")),
                "drift": list(drift.get("measures") or []), "failure": None}
    outcome = {"verdict": NOT_CHECKED, "verdict_id": None, "baseline_span": None, "drift": [],
               "failure": None}
    stopped = [x for x in store.executions(node=nodes.ANOMALIES_GATE_ID, input_of=examples.id)
               if failed(x)]
    if stopped:
        run_id = store.run_of(stopped[-1].id)
        outcome.update(verdict=STOPPED, stopped_in_run=run_id,
                       failure=failure_message(store, run_id, nodes.ANOMALIES_GATE_ID)
                       if run_id else None)
    return outcome


def span_rows(store: Store) -> List[Dict[str, Any]]:
    """One row per Examples artifact of the ExampleGen, newest first: span, version, examples,
    bytes read, created, the run that made it, the data gate's verdict (passed, first_span,
    drift_warned; stopped; not checked) with its drift measures, the runs whose Trainer
    read it (its training windows) and how each of those trainings started (`training_starts`:
    warm, cold, or None for a model without that record)."""
    verdicts = _verdicts_by_examples(store)
    modes: Dict[int, Optional[str]] = {}  # Trainer execution id -> its start mode
    rows = []
    for examples in _examples_of_example_gen(store):
        quality = data_quality(examples) or {}
        producer = store.producer(examples.id)
        trainers = [x for x in store.executions(node=nodes.TRAINER_ID, input_of=examples.id)
                    if succeeded(x)]
        trained: Dict[str, Optional[str]] = {}  # run -> the start mode of its Trainer
        for trainer in trainers:
            run_id = store.run_of(trainer.id)
            if run_id and run_id not in trained:
                if trainer.id not in modes:
                    start = trainer_start(store, trainer)
                    modes[trainer.id] = start["mode"] if start else None
                trained[run_id] = modes[trainer.id]
        rows.append({
            "examples_id": examples.id, "span": custom(examples, "span"),
            "version": custom(examples, "version"), "examples": quality.get("examples"),
            "bytes_read": quality.get("bytes_read"),
            "created": moment(examples.mlmd_artifact.create_time_since_epoch),
            "run_id": store.run_of(producer.id) if producer else None, "uri": examples.uri,
            **_gate_outcome(store, examples, verdicts.get(examples.id)),
            "trained_in_runs": list(trained), "training_starts": list(trained.values())})
    return rows


def trained_in_text(row: Dict[str, Any]) -> Optional[str]:
    """A span row's training runs with their start mode: `run-2 (cold), run-4 (warm)`."""
    modes = row.get("training_starts") or [None] * len(row["trained_in_runs"])
    return ", ".join(f"{run} ({mode})" if mode else str(run)
                     for run, mode in zip(row["trained_in_runs"], modes)) or None


def _newest_examples(store: Store, evaluator):
    """The Evaluator's input Examples of the newest span (it judges on the newest span)."""
    inputs = store.inputs(evaluator.id).get("examples", [])
    return max(inputs, key=lambda a: (custom(a, "span", -1), a.id), default=None)


def model_over_time(store: Store) -> List[Dict[str, Any]]:
    """Per finished evaluation, oldest first: the newest span it judged on, the candidate's and
    the baseline (served) model's RMSE/MAE on it, blessed, pushed, the span's examples and how
    the candidate's training started (`start`: training_start, None without that record)."""
    rows, seen = [], set()
    for evaluator in store.executions(node=nodes.EVALUATOR_ID):
        if not succeeded(evaluator):
            continue
        result = evaluation(store, evaluator)
        if result["evaluation_id"] in seen:  # a cached Evaluator reuses its evaluation
            continue
        seen.add(result["evaluation_id"])
        examples = _newest_examples(store, evaluator)
        metrics, base = result["metrics"] or {}, result["baseline_metrics"] or {}
        count = metrics.get(EXAMPLE_COUNT)
        run_id = result["run_id"]
        trainer = store.producer(result["model_id"]) if result["model_id"] is not None \
            else None
        rows.append({
            "run_id": run_id, "span": custom(examples, "span"),
            "version": custom(examples, "version"),
            "examples_id": examples.id if examples is not None else None,
            "span_examples": (data_quality(examples) or {}).get("examples")
            if examples is not None else None,
            "eval_examples": None if count is None else int(count),
            "model_id": result["model_id"], "rmse": metrics.get(RMSE), "mae": metrics.get(MAE),
            "baseline_model_id": result["baseline_model_id"], "baseline_rmse": base.get(RMSE),
            "baseline_mae": base.get(MAE), "blessed": result["blessed"],
            "pushed": any(p["pushed"] and p["run_id"] == run_id
                          for p in pushes_of(store, result["model_id"]))
            if result["model_id"] is not None else False,
            "metrics_error": result.get("metrics_error"),
            "start": trainer_start(store, trainer) if trainer is not None else None})
    return rows


def has_span_history(rows: List[Dict[str, Any]]) -> bool:
    """More than one span, or any span past 0: data that arrives as spans."""
    spans = {r["span"] for r in rows if r["span"] is not None}
    return len(spans) > 1 or any(s > 0 for s in spans)

