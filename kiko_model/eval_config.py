"""The TFMA EvalConfig: metrics, slices and the blessing thresholds of the Evaluator."""

import tensorflow_model_analysis as tfma

from kiko.model import eval_metrics
from kiko.model import features as fk
from kiko.model import slicing



def make_eval_config(rmse_upper_bound: float, max_rmse_increase: float) -> tfma.EvalConfig:
    """Metrics overall and per slice; bless only a model under the RMSE bound that is not worse
    than the last blessed model by more than `max_rmse_increase` (absolute RMSE)."""
    if rmse_upper_bound <= 0:
        raise ValueError(f"rmse_upper_bound must be > 0, got {rmse_upper_bound}")
    if max_rmse_increase < 0:
        raise ValueError(f"max_rmse_increase must be >= 0, got {max_rmse_increase}")
    rmse_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(upper_bound={"value": rmse_upper_bound}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.LOWER_IS_BETTER,
            absolute={"value": max_rmse_increase}))
    # Gender and age slices are simply empty when the data has no users.dat.
    slicing_specs = [tfma.SlicingSpec(),
                     tfma.SlicingSpec(feature_keys=[slicing.USER_ACTIVITY]),
                     tfma.SlicingSpec(feature_keys=[slicing.MOVIE_POPULARITY]),
                     tfma.SlicingSpec(feature_keys=[fk.GENDER]),
                     tfma.SlicingSpec(feature_keys=[fk.AGE])]
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name=fk.SERVING_SIGNATURE, label_key=fk.LABEL_KEY,
            prediction_key=fk.PREDICTION_KEY,
            preprocessing_function_names=[slicing.TRANSFORM_SIGNATURE])],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),

            # RMSE, MSE and MAE. The gate is the overall RMSE; small slices are reported only.
            tfma.MetricConfig(
                class_name="RatingRegressionErrors", module=eval_metrics.__name__,
                per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                    slicing_specs=[tfma.SlicingSpec()], threshold=rmse_threshold)]),
        ])],
        slicing_specs=slicing_specs)
