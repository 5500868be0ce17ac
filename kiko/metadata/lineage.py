"""A model's lineage: the Trainer, Examples, ExampleGen input and Schema it came from, and the
evaluations and pushes it went to."""

from typing import Any, Dict, Optional

from google.protobuf import json_format
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts

from kiko.metadata.artifacts import artifact_details, data_quality
from kiko.metadata.evaluation import evaluation
from kiko.metadata.models import pushed_model, pushes_of
from kiko.metadata.store import (
    State, Store, custom, duration_s, exec_properties, first, moment, parse_json)
from kiko.metadata.training import BASE_MODEL_KEY, read_model_run, training_start
from kiko.model.hparams import TRAINER_HPARAMS_KEY
from kiko.pipeline import nodes


def _trainer_record(store: Store, trainer: mlmd_pb2.Execution) -> Dict[str, Any]:
    properties = exec_properties(trainer)
    custom_config = parse_json(properties.get("custom_config")) or {}
    model_run = first(store.outputs(trainer.id), "model_run")
    report = read_model_run(model_run.uri if model_run else None) or {}
    return {
        "execution_id": trainer.id, "run_id": store.run_of(trainer.id),
        "state": State.Name(trainer.last_known_state),
        "started": moment(trainer.create_time_since_epoch),
        "duration_s": duration_s([trainer]), "run_fn": properties.get("run_fn"),
        "hparam_overrides": custom_config.get(TRAINER_HPARAMS_KEY, {}),
        "model_code": custom_config.get("model_code"),
        "model_run_id": model_run.id if model_run else None,
        "model_run_uri": model_run.uri if model_run else None,
        "hparams": report.get("hparams"), "final_metrics": report.get("final"),
        "start": training_start(report, first(store.inputs(trainer.id), BASE_MODEL_KEY))}


def lineage(store: Store, model_id: Optional[int] = None) -> Dict[str, Any]:
    """A model's provenance and fate (default: the pushed model, else the latest, and `chosen`
    says which): Trainer, Examples, ExampleGen input, Schema; evaluations and pushes.
    LookupError when there is no such Model."""
    chosen = "requested"
    if model_id is None:
        model_id, chosen = pushed_model(store).get("model_id"), "pushed"
        if model_id is None:
            models = store.models()
            if not models:
                raise LookupError("no Model artifact in this store")
            model_id, chosen = models[-1].id, "latest (no model has been pushed)"
    model = store.artifact(model_id)
    if not isinstance(model, standard_artifacts.Model):
        raise LookupError(f"no Model artifact with id {model_id}")
    trainer = store.producer(model.id)
    inputs = store.inputs(trainer.id) if trainer else {}
    examples, schema = first(inputs, "examples"), first(inputs, "schema")
    example_gen = store.producer(examples.id) if examples else None
    schema_gen = store.producer(schema.id) if schema else None
    gen_properties = exec_properties(example_gen) if example_gen else {}
    input_config = json_format.Parse(gen_properties.get("input_config") or "{}",
                                     example_gen_pb2.Input(), ignore_unknown_fields=True)
    keep = ("evaluator_execution_id", "run_id", "state", "evaluation_id", "evaluation_uri",
            "metrics", "baseline_model_id", "validation_ok", "blessing_id", "blessed")
    return {
        "chosen": chosen,
        "model": {"id": model.id, "uri": model.uri,
                  "created": moment(model.mlmd_artifact.create_time_since_epoch)},
        "trainer": _trainer_record(store, trainer) if trainer else None,
        "examples": None if examples is None else {
            "id": examples.id, "uri": examples.uri, "span": custom(examples, "span"),
            "input_fingerprint": custom(examples, "input_fingerprint"),
            "data_quality": data_quality(examples), **artifact_details(examples)},
        "example_gen": None if example_gen is None else {
            "execution_id": example_gen.id, "node_id": store.node_of(example_gen.id),
            "run_id": store.run_of(example_gen.id),
            "state": State.Name(example_gen.last_known_state),
            "input_base": gen_properties.get("input_base"),
            "input_patterns": {s.name: s.pattern for s in input_config.splits},
            "output_config": parse_json(gen_properties.get("output_config")),
            "malformed_lines": gen_properties.get("malformed_lines")},
        "schema": None if schema is None else {
            "id": schema.id, "uri": schema.uri,
            "node_id": store.node_of(schema_gen.id) if schema_gen else None,
            "schema_file": exec_properties(schema_gen).get("schema_file") if schema_gen
            else None},
        "evaluations": [{k: v for k, v in evaluation(store, x).items() if k in keep}
                        for x in store.executions(node=nodes.EVALUATOR_ID, input_of=model.id)
                        if getattr(first(store.inputs(x.id), "model"), "id", None) == model.id],
        "pushes": pushes_of(store, model.id)}
