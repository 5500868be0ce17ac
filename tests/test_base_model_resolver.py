"""The Trainer's base model (BaseModelStrategy): the latest blessed model not trained on this
run's new Examples, resolved over an ML Metadata store written the way TFX writes it; and its
wiring into the pipeline."""

import json

from tfx.types import standard_artifacts

from kiko.components.baseline_resolver.strategy import (
    CURRENT_EXAMPLES_KEY, MODEL_BLESSING_KEY, MODEL_KEY, BaseModelStrategy, base_model,
    trained_on)
from kiko.metadata.store import open_store
from kiko.pipeline import configs, nodes
from tests.test_baseline_resolver import _blessing, _model
from tests.test_inspect_spans import StoreBuilder


def _resolve(builder, current):
    """BaseModelStrategy over every Model and ModelBlessing of the store, as TFX calls it."""
    store = open_store(configs.Paths(builder.home).metadata_path)
    inputs = {CURRENT_EXAMPLES_KEY: [current], MODEL_KEY: store.models(),
              MODEL_BLESSING_KEY: store.artifacts(
                  f'type = "{standard_artifacts.ModelBlessing.TYPE_NAME}"')}
    resolved = BaseModelStrategy().resolve_artifacts(builder.handle.store, inputs)
    assert resolved[CURRENT_EXAMPLES_KEY] == []  # not handed on: the Trainer reads the window
    models, blessings = resolved[MODEL_KEY], resolved[MODEL_BLESSING_KEY]
    assert len(models) == len(blessings) <= 1
    if models:
        assert blessings[0].get_int_custom_property("current_model_id") == models[0].id
    return models[0].id if models else None


def test_the_latest_blessed_model_not_trained_on_the_new_examples(tmp_path):
    b = StoreBuilder(tmp_path)
    b.start_run("run-1")
    e1 = b.example_gen(1, 0, 1000)
    assert _resolve(b, e1) is None  # a first run: nothing to start from
    m1 = b.train([e1])
    b.evaluate(e1, m1, None, {}, None, True)

    b.start_run("run-2")
    e2 = b.example_gen(2, 0, 1000)
    assert _resolve(b, e2) == m1.id
    m2 = b.train([e1, e2], base=m1)
    b.evaluate(e2, m2, m1, {}, {}, True)

    # No new span: ExampleGen hands on e2 again; m2 was trained on it, m1 was not, so the
    # Trainer gets the inputs of run 2 (and is served from cache).
    b.start_run("run-3")
    assert _resolve(b, e2) == m1.id
    b.cached_train(m2, [e1, e2], base=m1)
    assert _resolve(b, e2) == m1.id  # the cached Trainer read e2 too

    b.start_run("run-4")
    e3 = b.example_gen(3, 0, 1000)
    assert _resolve(b, e3) == m2.id
    m3 = b.train([e2, e3], base=m2)
    b.evaluate(e3, m3, m2, {}, {}, False)  # not blessed: never a base

    # Span 3 corrected and ingested again: a new Examples artifact no model was trained on.
    b.start_run("run-5")
    e3_again = b.example_gen(3, 1, 1000)
    assert _resolve(b, e3_again) == m2.id


def test_trained_on_is_what_the_models_trainer_read(tmp_path):
    b = StoreBuilder(tmp_path)
    b.start_run("run-1")
    e1 = b.example_gen(1, 0, 1000)
    m1 = b.train([e1])
    b.start_run("run-2")
    e2 = b.example_gen(2, 0, 1000)
    m2 = b.train([e1, e2], base=m1)
    read = trained_on(b.handle.store, [m1.id, m2.id])
    assert read[m1.id] == {e1.id}
    assert read[m2.id] == {e1.id, e2.id, m1.id}
    assert trained_on(b.handle.store, []) == {}


def test_base_model_skips_unblessed_models_and_those_trained_on_the_new_examples():
    examples = standard_artifacts.Examples()
    examples.id = 50
    models = [_model(1), _model(2), _model(3), _model(4)]
    blessings = [_blessing(10, 1, True), _blessing(11, 2, True), _blessing(12, 3, True),
                 _blessing(13, 4, False)]
    asked = []

    def inputs_of(ids):
        asked.append(ids)
        return {1: {40}, 2: {40, 41}, 3: {41, 50}, 4: {50}}

    result = base_model([examples], models, blessings, inputs_of)
    assert [m.id for m in result[MODEL_KEY]] == [2]  # 4 not blessed, 3 trained on 50
    assert [b.id for b in result[MODEL_BLESSING_KEY]] == [11]
    assert asked == [[3, 2, 1]]  # blessed models only, newest first
    none = base_model([examples], models[3:], blessings, inputs_of)
    assert none[MODEL_KEY] == [] and none[MODEL_BLESSING_KEY] == []


def _pipeline(tmp_path, **settings):
    from kiko.pipeline.kiko_pipeline import create_pipeline

    return create_pipeline(
        pipeline_name=configs.PIPELINE_NAME, pipeline_root=str(tmp_path), input_base=str(tmp_path),
        schema_path=configs.schema_path(True, True), metadata_path=None,
        serving_dir=str(tmp_path / "serving"), rmse_upper_bound=1.0, max_rmse_increase=0.01,
        **settings)


def test_the_trainer_gets_the_resolved_base_model_and_the_warm_start_options(tmp_path):
    from kiko.model.warm_start import WARM_START_KEY, WarmStartOptions

    pipeline = _pipeline(tmp_path, warm_start=WarmStartOptions(cold_every=3))
    by_id = {c.id: c for c in pipeline.components}
    trainer, resolver = by_id[nodes.TRAINER_ID], by_id[nodes.BASE_MODEL_RESOLVER_ID]
    assert resolver.exec_properties["resolver_class"] is BaseModelStrategy
    assert by_id[nodes.EXAMPLE_GEN_ID] in resolver.upstream_nodes  # this run's new Examples
    assert trainer.inputs["base_model"] is resolver.outputs[MODEL_KEY]
    config = json.loads(trainer.exec_properties["custom_config"])
    assert config[WARM_START_KEY] == {"cold": False, "cold_every": 3, "min_kept": 0.5}
    assert nodes.BASE_MODEL_RESOLVER_ID in nodes.RESOLVER_IDS

    # The defaults; without span history (the Kubeflow v2 compile) no base model: a cold start.
    pipeline = _pipeline(tmp_path, span_history=False)
    by_id = {c.id: c for c in pipeline.components}
    assert nodes.BASE_MODEL_RESOLVER_ID not in by_id
    trainer = by_id[nodes.TRAINER_ID]
    assert "base_model" not in trainer.inputs
    config = json.loads(trainer.exec_properties["custom_config"])
    assert config[WARM_START_KEY] == WarmStartOptions().to_dict()
