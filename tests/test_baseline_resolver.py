"""The Evaluator's baseline: the latest blessed model that is not the candidate."""

from tfx.types import standard_artifacts

from kiko.components.baseline_resolver.strategy import (
    CANDIDATE_KEY, MODEL_BLESSING_KEY, MODEL_KEY, previous_blessed_model)


def _model(artifact_id):
    model = standard_artifacts.Model()
    model.id = artifact_id
    return model


def _blessing(artifact_id, model_id, blessed):
    blessing = standard_artifacts.ModelBlessing()
    blessing.id = artifact_id
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def test_latest_blessed_model_other_than_the_candidate():
    models = [_model(1), _model(2), _model(3), _model(4)]
    blessings = [_blessing(10, 1, True), _blessing(11, 2, True), _blessing(12, 3, False),
                 _blessing(13, 4, True)]
    result = previous_blessed_model([models[3]], models, blessings)
    assert [m.id for m in result[MODEL_KEY]] == [2]  # 4 is the candidate, 3 not blessed
    assert [b.id for b in result[MODEL_BLESSING_KEY]] == [11]
    assert [c.id for c in result[CANDIDATE_KEY]] == [4]


def test_no_baseline_when_only_the_candidate_is_blessed():
    models = [_model(1)]
    result = previous_blessed_model(models, models, [_blessing(10, 1, True)])
    assert result[MODEL_KEY] == [] and result[MODEL_BLESSING_KEY] == []
