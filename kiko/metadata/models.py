"""The models a pipeline trained and what became of each: evaluation, blessing, pushes, and the
model being served (the latest push)."""

import os
from typing import Any, Dict, List

from tfx.types import standard_artifacts

from kiko.metadata.evaluation import evaluation, evaluations_of
from kiko.metadata.runs import why_not_pushed
from kiko.metadata.store import Store, custom, first, moment
from kiko.pipeline import nodes


def pushes_of(store: Store, model_id: int) -> List[Dict[str, Any]]:
    """Every Pusher execution that took the model: pushed or not, where, which version."""
    pushes = []
    for pusher in store.executions(node=nodes.PUSHER_ID, input_of=model_id):
        pushed = first(store.outputs(pusher.id), "pushed_model")
        if pushed is not None:
            pushes.append({
                "pusher_execution_id": pusher.id, "run_id": store.run_of(pusher.id),
                "pushed_model_id": pushed.id, "pushed": bool(custom(pushed, "pushed", 0)),
                "destination": custom(pushed, "pushed_destination"),
                "version": custom(pushed, "pushed_version"),
                "pushed_at": moment(pushed.mlmd_artifact.create_time_since_epoch)})
    return pushes


def list_models(store: Store) -> List[Dict[str, Any]]:
    """Each Model, oldest first: its run, the TFMA metrics of its latest evaluation as the
    candidate (and the baseline's), blessed by any evaluation, pushed or not and where."""
    models = []
    for model in store.models():
        trainer = store.producer(model.id)
        evaluators = evaluations_of(store, model.id)
        latest = evaluation(store, evaluators[-1]) if evaluators else {}
        pushes = [p for p in pushes_of(store, model.id) if p["pushed"]]
        models.append({
            "model_id": model.id, "run_id": store.run_of(trainer.id) if trainer else None,
            "trainer_execution_id": trainer.id if trainer else None, "uri": model.uri,
            "created": moment(model.mlmd_artifact.create_time_since_epoch),
            "evaluated": bool(evaluators), "metrics": latest.get("metrics"),
            "baseline_model_id": latest.get("baseline_model_id"),
            "baseline_metrics": latest.get("baseline_metrics"),
            "validation_ok": latest.get("validation_ok"),
            "evaluation_id": latest.get("evaluation_id"),
            "blessed": any(custom(first(store.outputs(x.id), "blessing"), "blessed", 0)
                           for x in evaluators) if evaluators else None,
            "pushed": bool(pushes),
            "pushed_destination": pushes[-1]["destination"] if pushes else None,
            "pushed_version": pushes[-1]["version"] if pushes else None})
    return models


def pushed_model(store: Store) -> Dict[str, Any]:
    """The model being served (latest PushedModel with pushed=1): where, which Model, when; else
    `pushed` False and why. `latest_attempt` says why a later push attempt pushed nothing."""
    pushed = store.artifacts(f'type = "{standard_artifacts.PushedModel.TYPE_NAME}" AND '
                             "custom_properties.pushed.int_value = 1")
    pushers = store.executions(node=nodes.PUSHER_ID)
    last_run = store.run_of(pushers[-1].id) if pushers else None
    if not pushed:
        return {"pushed": False, "reason": why_not_pushed(store, last_run)
                or "the pipeline has not pushed"}
    latest = pushed[-1]
    pusher = store.producer(latest.id)
    model = first(store.inputs(pusher.id), "model") if pusher else None
    destination = custom(latest, "pushed_destination")
    attempt = why_not_pushed(store, last_run) if last_run else None
    return {
        "pushed": True, "destination": destination,
        "destination_exists": bool(destination) and os.path.isdir(destination),
        "version": custom(latest, "pushed_version"), "pushed_model_id": latest.id,
        "pushed_model_uri": latest.uri, "model_id": model.id if model else None,
        "model_uri": model.uri if model else None,
        "run_id": store.run_of(pusher.id) if pusher else None,
        "pushed_at": moment(latest.mlmd_artifact.create_time_since_epoch),
        "latest_attempt": f"run {last_run}: {attempt}" if attempt else None}
