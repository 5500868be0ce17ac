"""The matrix-factorisation member: mu + biases + <p_u + s_u, q_m + s_m>.

s_u / s_m are the mean vectors of whatever side features the data has (any user or movie
feature, int or bytes, one value or several), all L2-regularised per example (SVD style). It is
the blend's fallback for users or movies it does not know (their known biases remain).
"""

from __future__ import annotations

import tensorflow as tf

from kiko.model import features as fk
from kiko.model.hparams import HParams
from kiko.model.layers import BiasedFactorization, SideFeatures
from kiko.model.member import MF, Member
from kiko.model.vocabulary import MOVIE_INDEX, USER_INDEX, Vocabularies


class MatrixFactorization(Member):
    """Biased MF with side features; loss = MSE + mean per-example L2."""

    def __init__(self, vocab: Vocabularies, hparams: HParams, global_mean: float):
        super().__init__(MF, vocab.rating_range)
        dim, seed = hparams.embedding_dim, hparams.seed
        user_side = (SideFeatures(vocab.user_side, dim, seed + 10, name="user_side")
                     if vocab.user_side else None)
        movie_side = (SideFeatures(vocab.movie_side, dim, seed + 20, name="movie_side")
                      if vocab.movie_side else None)
        self.factorization = BiasedFactorization(
            vocab.n_users, vocab.n_movies, dim, global_mean, hparams.l2_factors,
            hparams.l2_biases, hparams.l2_side, seed, user_side, movie_side,
            name="factorization")

    def predict_pairs(self, user_index, movie_index):
        return self.factorization(user_index, movie_index)[0]

    def score_all(self, user_index):
        return self.factorization.score_all(user_index)

    def compute_loss(self, batch, training=False):
        prediction, penalty = self.factorization(batch[USER_INDEX], batch[MOVIE_INDEX])
        if training:
            loss = self.task(labels=batch[fk.RATING], predictions=prediction)
        else:
            loss = self.task(labels=batch[fk.RATING], predictions=self.clip(prediction))
        return loss + tf.reduce_mean(penalty)
