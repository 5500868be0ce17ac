"""The Evaluator's configuration: what is measured, sliced and gated."""

import numpy as np
import pytest
import tensorflow_model_analysis as tfma

from kiko.model import eval_config
from kiko.model import features as fk
from kiko.model import slicing


def test_gates_only_the_overall_rmse_with_value_and_change_thresholds():
    config = eval_config.make_eval_config(rmse_upper_bound=0.95, max_rmse_increase=0.005)
    (spec,) = config.model_specs
    assert (spec.signature_name, spec.label_key) == ("serving_default", fk.LABEL_KEY)
    assert list(spec.preprocessing_function_names) == [slicing.TRANSFORM_SIGNATURE]
    metrics = {m.class_name: m for m in config.metrics_specs[0].metrics}
    assert set(metrics) == {"ExampleCount", "RatingRegressionErrors"}
    rmse = metrics["RatingRegressionErrors"]
    assert not rmse.HasField("threshold")
    (gate,) = rmse.per_slice_thresholds
    assert list(gate.slicing_specs) == [tfma.SlicingSpec()]
    assert gate.threshold.value_threshold.upper_bound.value == 0.95
    assert gate.threshold.change_threshold.absolute.value == 0.005
    assert gate.threshold.change_threshold.direction == tfma.MetricDirection.LOWER_IS_BETTER
    sliced = {tuple(s.feature_keys) for s in config.slicing_specs}
    assert sliced == {(), (slicing.USER_ACTIVITY,), (slicing.MOVIE_POPULARITY,), (fk.GENDER,),
                      (fk.AGE,)}


def test_rejects_meaningless_thresholds():
    with pytest.raises(ValueError, match="rmse_upper_bound"):
        eval_config.make_eval_config(rmse_upper_bound=0, max_rmse_increase=0.01)
    with pytest.raises(ValueError, match="max_rmse_increase"):
        eval_config.make_eval_config(rmse_upper_bound=1, max_rmse_increase=-0.1)


def test_bucket_labels_cover_all_counts():
    labels = slicing.bucket_labels(slicing.USER_ACTIVITY_EDGES)
    assert labels == ("0", "1-19", "20-49", "50-99", "100-199", "200-499", "500+")
    counts = [0, 1, 19, 20, 499, 500, 10_000]
    assert [labels[i] for i in slicing.bucketize(counts, slicing.USER_ACTIVITY_EDGES)] == [
        "0", "1-19", "1-19", "20-49", "200-499", "500+", "500+"]


def test_regression_sums_merge_counts_each_accumulator_once():
    from kiko.model import eval_metrics

    keys = {name: tfma.metrics.MetricKey(name=name) for name in (
        eval_metrics.MSE_NAME, eval_metrics.MAE_NAME, eval_metrics.RMSE_NAME)}
    combiner = eval_metrics._RegressionErrors(keys, None, example_weighted=False)
    parts = []
    for squared, absolute, weight in ((4.0, 2.0, 1.0), (1.0, 1.0, 2.0), (9.0, 3.0, 3.0)):
        accumulator = combiner.create_accumulator()
        accumulator.squared, accumulator.absolute, accumulator.weight = squared, absolute, weight
        parts.append(accumulator)
    merged = combiner.merge_accumulators(parts)
    assert (merged.squared, merged.absolute, merged.weight) == (14.0, 6.0, 6.0)
    output = combiner.extract_output(merged)
    assert output[keys[eval_metrics.MSE_NAME]] == pytest.approx(14 / 6)
    assert output[keys[eval_metrics.RMSE_NAME]] == pytest.approx((14 / 6) ** 0.5)
    assert output[keys[eval_metrics.MAE_NAME]] == pytest.approx(1.0)


def test_regression_errors_read_plain_inputs_as_tfma_does():
    """The combiner's direct reading of labels and predictions agrees with TFMA's generic
    unpacking, for array and keyed predictions; other inputs take the generic path."""
    from kiko.model import eval_metrics

    config = eval_config.make_eval_config(1.0, 0.01)
    keys = {name: tfma.metrics.MetricKey(name=name) for name in (
        eval_metrics.MSE_NAME, eval_metrics.MAE_NAME, eval_metrics.RMSE_NAME)}
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 6, 50).astype(np.float32)
    predictions = rng.uniform(1, 5, 50).astype(np.float32)
    inputs = []
    for i, (label, prediction) in enumerate(zip(labels, predictions)):
        value = np.array([prediction])
        inputs.append(tfma.metrics.StandardMetricInputs(
            labels=np.array([label]),
            predictions={fk.PREDICTION_KEY: value} if i % 2 else value,
            example_weights=np.array([1.0])))

    def outputs(direct: bool):
        combiner = eval_metrics._RegressionErrors(keys, config, example_weighted=False)
        assert combiner._direct  # one model, one output, unweighted
        combiner._direct = direct
        accumulator = combiner.create_accumulator()
        for element in inputs:
            accumulator = combiner.add_input(accumulator, element)
        return combiner.extract_output(accumulator)

    direct, generic = outputs(True), outputs(False)
    error = labels.astype(np.float64) - predictions
    assert direct[keys[eval_metrics.RMSE_NAME]] == pytest.approx(np.sqrt(np.mean(error ** 2)))
    assert direct[keys[eval_metrics.MAE_NAME]] == pytest.approx(np.mean(np.abs(error)))
    for key in keys.values():
        assert direct[key] == pytest.approx(generic[key], rel=1e-12)
    weighted = eval_metrics._RegressionErrors(keys, config, example_weighted=True)
    assert not weighted._direct
