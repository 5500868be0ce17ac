"""The served model: raw ids -> a calibrated, feature-weighted blend of the members.

`RatingModel` maps ids to dense indices, stacks the members' predictions with weights that vary
with how many training ratings the user and the movie have, then applies a piecewise-linear
calibration; both are fit by least squares on the validation part (`fit_blend`). An unknown
user or movie falls back to the MF's known biases (the global mean when both are unknown).
Predictions are clipped to the rating range seen in training. It also recommends.
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from kiko.model import features as fk
from kiko.model.layers import RatedMovies
from kiko.model.member import MF, Member, ranking_task
from kiko.model.vocabulary import MOVIE_INDEX, USER_INDEX, Vocabularies, id_lookup

# Calibration: hinge knots at these fractions of the training rating range.
CALIBRATION_KNOT_FRACTIONS = tuple(np.linspace(0.125, 0.875, 7))
_CALIBRATION_RIDGE = 1.0
_BLEND_RIDGE = 1e-3
# Stacking features of a (user, movie) pair (see RatingModel).
BLEND_FEATURES = ("intercept", "user_support", "movie_support")
# Prior weight (in ratings at the global mean) of the damped mean that ranks movies for users
# the model does not know.
COLD_START_PRIOR_RATINGS = 50


def cold_start_scores(movie_index: np.ndarray, ratings: np.ndarray, n_movies: int) -> np.ndarray:
    """Ranking key [n_movies + 1] of the movies recommended to an unknown user.

    The damped mean rating (sum of ratings + C x global mean) / (count + C) with
    C = COLD_START_PRIOR_RATINGS: a movie needs many good ratings to rank high, so the list is
    the popular, well-rated movies. Index 0 (no movie) is -inf.
    """
    ratings = np.asarray(ratings, dtype=np.float64)
    counts = np.bincount(movie_index, minlength=n_movies + 1).astype(np.float64)
    sums = np.bincount(movie_index, weights=ratings, minlength=n_movies + 1)
    prior = COLD_START_PRIOR_RATINGS
    scores = (sums + prior * ratings.mean()) / (counts + prior)
    scores[0] = -np.inf
    return scores.astype(np.float32)


def support(index: np.ndarray, n: int) -> np.ndarray:
    """Per entity index [n + 1]: log(1 + training count), standardised over the ratings."""
    log_counts = np.log1p(np.bincount(index, minlength=n + 1)).astype(np.float64)
    per_rating = log_counts[index]
    return ((log_counts - per_rating.mean()) / max(per_rating.std(), 1e-6)).astype(np.float32)


class RatingModel(tfrs.models.Model):
    """The served model: raw ids -> clipped, calibrated blend of the members (the MF alone for
    unknown ids). It also recommends (`recommend`): from the training ratings it keeps which
    movies each user rated (`RatedMovies`) and the cold-start ranking of `cold_start_scores`.
    """

    def __init__(self, vocab: Vocabularies, members: Sequence[Member], rated: RatedMovies,
                 cold_start: np.ndarray, user_support: np.ndarray, movie_support: np.ndarray):
        super().__init__()
        if not members or members[0].name != MF:
            raise ValueError("the first member must be the matrix factorisation (the fallback)")
        self.user_lookup = id_lookup(vocab.user_ids, name="user_lookup")
        self.movie_lookup = id_lookup(vocab.movie_ids, name="movie_lookup")
        self.members = list(members)
        self.rating_range = vocab.rating_range
        self.rated = rated
        self.cold_start = tf.Variable(cold_start, trainable=False, name="cold_start")
        self.movie_ids = tf.Variable(
            np.concatenate([[fk.NO_MOVIE_ID], vocab.movie_ids]).astype(np.int64),
            trainable=False, name="movie_ids")  # movie index -> raw id
        # Feature-weighted stacking: s = sum_f x_f (a_f + sum_i w_fi member_i) with features
        # x = (1, user support, movie support), the standardised log training counts (how
        # much a member is worth depends on how much it has seen of the pair), then the
        # calibration b0 + b1 s + sum_j c_j relu(s - k_j) (ratings are ordinal: their
        # conditional mean is not linear in the score). Both are fit on the validation part
        # by `fit_blend`; the MF alone until then.
        self.user_support = tf.Variable(user_support, trainable=False, name="user_support")
        self.movie_support = tf.Variable(movie_support, trainable=False, name="movie_support")
        lo, hi = self.rating_range
        self.knots = tf.constant([lo + f * (hi - lo) for f in CALIBRATION_KNOT_FRACTIONS],
                                 tf.float32)
        weights = np.zeros((len(BLEND_FEATURES), len(self.members) + 1), np.float32)
        weights[0, 1] = 1.0
        self.blend_weights = tf.Variable(weights, trainable=False, name="blend_weights")
        self.calibration = tf.Variable([0.0, 1.0] + [0.0] * len(CALIBRATION_KNOT_FRACTIONS),
                                       trainable=False, name="calibration")
        self.task = ranking_task()

    @property
    def member_names(self) -> List[str]:
        return [member.name for member in self.members]

    def clip(self, ratings: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(ratings, *self.rating_range)

    def indices(self, features) -> dict:
        return {USER_INDEX: self.user_lookup(features[fk.USER_ID]),
                MOVIE_INDEX: self.movie_lookup(features[fk.MOVIE_ID])}

    def components(self, index: dict) -> tf.Tensor:
        """[B, n_members]: the clipped predictions of every member."""
        return tf.stack([self.clip(m.predict_pairs(index[USER_INDEX], index[MOVIE_INDEX]))
                         for m in self.members], axis=-1)

    def calibrate(self, score: tf.Tensor) -> tf.Tensor:
        hinges = tf.nn.relu(score[..., tf.newaxis] - self.knots)
        return (self.calibration[0] + self.calibration[1] * score
                + tf.reduce_sum(hinges * self.calibration[2:], axis=-1))

    def blend_features(self, user_index: tf.Tensor, movie_index: tf.Tensor) -> tf.Tensor:
        """[..., len(BLEND_FEATURES)]: the stacking features of (broadcast) index pairs."""
        users = tf.gather(self.user_support, tf.cast(user_index, tf.int64))
        movies = tf.gather(self.movie_support, tf.cast(movie_index, tf.int64))
        shape = tf.broadcast_dynamic_shape(tf.shape(users), tf.shape(movies))
        users, movies = tf.broadcast_to(users, shape), tf.broadcast_to(movies, shape)
        return tf.stack([tf.ones_like(users), users, movies], axis=-1)

    def _combine(self, parts: tf.Tensor, features: tf.Tensor, known: tf.Tensor) -> tf.Tensor:
        """Calibrated blend of ``parts`` [..., n_members] with stacking ``features`` where
        ``known``, else the MF part."""
        with_intercept = tf.concat([tf.ones_like(parts[..., :1]), parts], axis=-1)
        score = tf.reduce_sum(features * tf.linalg.matvec(self.blend_weights, with_intercept),
                              axis=-1)
        return tf.where(known, self.calibrate(score), parts[..., 0])

    def blend(self, index: dict) -> tf.Tensor:
        known = tf.logical_and(index[USER_INDEX] > 0, index[MOVIE_INDEX] > 0)
        return self._combine(self.components(index),
                             self.blend_features(index[USER_INDEX], index[MOVIE_INDEX]), known)

    def score_all(self, user_index: tf.Tensor) -> tf.Tensor:
        """Unclipped blend [U, n_movies + 1] of users ``user_index`` for every movie index."""
        parts = tf.stack([self.clip(m.score_all(user_index)) for m in self.members], axis=-1)
        movies = tf.range(tf.shape(parts, out_type=tf.int64)[1])
        known = tf.logical_and((user_index > 0)[:, tf.newaxis], (movies > 0)[tf.newaxis, :])
        features = self.blend_features(user_index[:, tf.newaxis], movies[tf.newaxis, :])
        return self._combine(parts, features, known)

    def recommend(self, user_id: tf.Tensor, k: tf.Tensor) -> dict:
        """The k movies with the highest predicted rating that each user did not rate.

        A known user gets their unrated movies ranked by the model (ranked on the unclipped
        score, so ties at the clip are broken by the model); an unknown user gets the
        `cold_start_scores` ranking. ``k`` is clamped to the number of movies the model knows;
        a row with fewer than k candidates is padded with movie id `NO_MOVIE_ID` and rating 0.
        The ratings are what `predict_ratings` returns for the same pairs.
        """
        with tf.control_dependencies([tf.debugging.assert_non_negative(
                k, message=f"{fk.RECOMMEND_K} must be >= 0")]):
            users = self.user_lookup(user_id)
        scores = self.score_all(users)
        k = tf.minimum(tf.cast(k, tf.int32), tf.shape(scores)[1] - 1)
        excluded = float("-inf")
        key = self.rated(users, scores, excluded)
        key = tf.where((users > 0)[:, tf.newaxis], key, self.cold_start[tf.newaxis, :])
        key = tf.concat([tf.fill([tf.shape(key)[0], 1], excluded), key[:, 1:]], axis=1)
        values, movies = tf.math.top_k(key, k=k)
        found = values > excluded
        return {
            fk.RECOMMENDED_MOVIE_IDS: tf.where(found, tf.gather(self.movie_ids, movies),
                                               tf.constant(fk.NO_MOVIE_ID, tf.int64)),
            fk.RECOMMENDED_RATINGS: tf.where(found, tf.gather(self.clip(scores), movies,
                                                              batch_dims=1), 0.0),
        }

    def call(self, features, training=False):
        return self.clip(self.blend(self.indices(features)))

    def compute_loss(self, features, training=False):
        return self.task(labels=features[fk.RATING], predictions=self(features))


def fit_blend(model: RatingModel, val: dict, by_support: bool, calibrate: bool) -> dict:
    """Least-squares stacking weights, then the calibration, on the known pairs of ``val``
    (indexed columns). Returns the weights as metrics.json's `blend` records them."""
    known = (val[USER_INDEX] > 0) & (val[MOVIE_INDEX] > 0)
    index = {key: tf.constant(val[key][known]) for key in (USER_INDEX, MOVIE_INDEX)}
    parts = model.components(index).numpy().astype(np.float64)
    features = model.blend_features(index[USER_INDEX], index[MOVIE_INDEX]).numpy().astype(
        np.float64)
    if not by_support:
        features = features[:, :1]
    labels = val[fk.RATING][known].astype(np.float64)
    with_intercept = np.column_stack([np.ones(len(parts)), parts])
    design = (features[:, :, None] * with_intercept[:, None, :]).reshape(len(parts), -1)
    ridge = _BLEND_RIDGE * len(parts) * np.eye(design.shape[1])
    ridge[0, 0] = 0.0
    weights = np.linalg.solve(design.T @ design + ridge, design.T @ labels)
    matrix = np.zeros(model.blend_weights.shape, np.float64)
    matrix[:features.shape[1]] = weights.reshape(features.shape[1], -1)
    model.blend_weights.assign(matrix.astype(np.float32))
    if calibrate:
        score = design @ weights
        knots = model.knots.numpy().astype(np.float64)
        design = np.column_stack([np.ones(len(score)), score,
                                  np.maximum(score[:, None] - knots, 0)])
        ridge = np.diag([0.0, 0.0] + [_CALIBRATION_RIDGE] * len(knots))
        coef = np.linalg.solve(design.T @ design + ridge, design.T @ labels)
        model.calibration.assign(coef.astype(np.float32))
    return {"names": model.member_names, "weights": [float(w) for w in matrix[0, 1:]],
            "intercept": float(matrix[0, 0]),
            "by_support": {name: {"intercept": float(row[0]),
                                  "weights": [float(w) for w in row[1:]]}
                           for name, row in zip(BLEND_FEATURES[1:], matrix[1:])}}
