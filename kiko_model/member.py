"""What every member of the blend is: a `tfrs.models.Model` over dense indices with a Ranking task.

Each member's `compute_loss` drives Keras `fit` (TFRS's `train_step`); validation batches are
rating pairs {user index, movie index, rating} on which the task computes the loss and the
RMSE/MAE/MSE of the clipped predictions (what early stopping watches).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from kiko.model import features as fk
from kiko.model.vocabulary import MOVIE_INDEX, USER_INDEX

# Member names (the `stage` of each history entry in metrics.json).
MF = "mf"
ITEM_AUTOREC = "item_autorec"
USER_AUTOREC = "user_autorec"


def ranking_task() -> tfrs.tasks.Ranking:
    """MSE loss with the RMSE, MAE and MSE metrics (Keras logs them as rmse, mae, mse)."""
    return tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(),
        metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse"),
                 tf.keras.metrics.MeanAbsoluteError(name="mae"),
                 tf.keras.metrics.MeanSquaredError(name="mse")])


class Member(tfrs.models.Model):
    """A model of the blend: trained by `fit` on `compute_loss`; scores pairs and whole rows."""

    def __init__(self, name: str, rating_range: tuple):
        super().__init__(name=name)
        self.rating_range = rating_range
        self.task = ranking_task()

    def clip(self, ratings: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(ratings, *self.rating_range)

    def predict_pairs(self, user_index: tf.Tensor, movie_index: tf.Tensor) -> tf.Tensor:
        """Unclipped predictions [N] for pairs of known users and movies."""
        raise NotImplementedError

    def score_all(self, user_index: tf.Tensor) -> tf.Tensor:
        """Unclipped predictions [U, n_movies + 1] of users ``user_index`` for every movie."""
        raise NotImplementedError

    def fit_callbacks(self) -> list:
        """Keras callbacks the member needs during its own `fit`."""
        return []

    # Keras traces these into its training and test functions with autograph; they have no
    # data-dependent Python control flow, and converting Keras' and TFRS's internals costs
    # seconds per model.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, inputs):
        return super().train_step(inputs)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, inputs):
        return super().test_step(inputs)

    def validation_loss(self, batch) -> tf.Tensor:
        prediction = self.clip(self.predict_pairs(batch[USER_INDEX], batch[MOVIE_INDEX]))
        return self.task(labels=batch[fk.RATING], predictions=prediction)

    def call(self, features, training=False):
        return self.predict_pairs(features[USER_INDEX], features[MOVIE_INDEX])
