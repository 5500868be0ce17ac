"""A native TFMA RMSE: the square root of TFMA's own MeanSquaredError.

TFMA has no native RMSE; the Keras one runs a TF metric per slice and was the slowest part of
the Evaluator. This derives it from the NumPy MSE combiner instead.
"""

import math
from typing import Optional

import tensorflow_model_analysis as tfma

RMSE_NAME = "root_mean_squared_error"
_MSE_NAME = "_mse_for_rmse"


def _rmse_computations(name: str = RMSE_NAME, eval_config=None,
                       model_name: Optional[str] = None, output_name: Optional[str] = None,
                       example_weighted: bool = False, sub_key=None, aggregation_type=None,
                       class_weights=None, query_key=None, schema=None):
    mse = tfma.metrics.MeanSquaredError(name=_MSE_NAME).computations(
        eval_config=eval_config, model_names=[model_name], output_names=[output_name],
        sub_keys=[sub_key], aggregation_type=aggregation_type, class_weights=class_weights,
        example_weighted=example_weighted)
    mse_key = mse[-1].keys[0]
    key = tfma.metrics.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)

    def result(metrics):
        return {key: math.sqrt(metrics[mse_key])}

    return mse + [tfma.metrics.DerivedMetricComputation(keys=[key], result=result)]


class RootMeanSquaredError(tfma.metrics.Metric):
    """Root mean squared error between label and prediction."""

    def __init__(self, name: str = RMSE_NAME):
        super().__init__(tfma.metrics.merge_per_key_computations(_rmse_computations),
                         name=name)
