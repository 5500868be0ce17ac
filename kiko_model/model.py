"""The kiko rating model: a validation-fitted blend of TFRS models.

Members (measured in benchmarks/model_quality.py), each a `tfrs.models.Model` whose
`compute_loss` drives Keras `fit` (TFRS's `train_step`), stopped by
`tf.keras.callbacks.EarlyStopping(restore_best_weights=True)` on the validation RMSE that its
`tfrs.tasks.Ranking` task computes every epoch:

* `MatrixFactorization`: mu + biases + <p_u + s_u, q_m + s_m>; s_u / s_m are the mean vectors
  of whatever side features the data has (any user or movie feature, int or bytes, one value
  or several), all L2-regularised per example (SVD style).
* `AutoRecModel`: AutoRec on the sparse rating matrix, item-based (I-AutoRec: each movie's
  ratings by all users) and user-based (U-AutoRec), trained on batches of rows with a
  per-entry L2 penalty; an epoch costs O(ratings x units) (see `_RatingRows`).
* `RatingModel` (what `train_model` returns and `export_saved_model` writes): raw ids -> a
  feature-weighted blend of the members (weights that vary with how many training ratings the
  user and the movie have), then a piecewise-linear calibration, both fit by least squares on
  the validation part. An unknown user or movie falls back to the MF's known biases (the
  global mean when both are unknown). Predictions are clipped to the rating range seen in
  training. It also recommends (`recommend`).

Training data are compact NumPy columns (`data.Examples`): int32 indices, float32 ratings,
per-entity side tables. Large embedding tables get row-sparse updates from `LazyAdam`, so a
step costs O(batch) whatever the number of users and movies.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
from absl import logging

from kiko_model import data
from kiko_model import features as fk
from kiko_model.hparams import HParams
from kiko_model.layers import (AutoRec, BiasedFactorization, IdIndex, RatedMovies,
                               SideFeatures)

OUTPUT_KEY = fk.PREDICTION_KEY
SERVING_SIGNATURE = fk.SERVING_SIGNATURE
PREDICT_SIGNATURE = fk.PREDICT_SIGNATURE

# Member names (the `stage` of each history entry in metrics.json).
MF = "mf"
ITEM_AUTOREC = "item_autorec"
USER_AUTOREC = "user_autorec"

_USER, _MOVIE, _ROWS = "user_index", "movie_index", "rows"  # dense indices, 0 = OOV
_PREDICT_BATCH = 65536
_VALIDATION_BATCH = 65536
# Calibration: hinge knots at these fractions of the training rating range.
CALIBRATION_KNOT_FRACTIONS = tuple(np.linspace(0.125, 0.875, 7))
_CALIBRATION_RIDGE = 1.0
_BLEND_RIDGE = 1e-3
# Stacking features of a (user, movie) pair (see RatingModel).
BLEND_FEATURES = ("intercept", "user_support", "movie_support")
# Prior weight (in ratings at the global mean) of the damped mean that ranks movies for users
# the model does not know.
COLD_START_PRIOR_RATINGS = 50
# Least observed share of the rating matrix for dense AutoRec steps (see `_RatingRows`).
DENSE_MIN_DENSITY = 0.01
# Tables with at most this many rows get dense Adam updates (see LazyAdam).
DENSE_UPDATE_ROWS = 16384
# Keras runs this many training steps per call of its training function.
_STEPS_PER_EXECUTION = 16


def _ranking_task() -> tfrs.tasks.Ranking:
    return tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(),
        metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse"),
                 tf.keras.metrics.MeanAbsoluteError(name="mae"),
                 tf.keras.metrics.MeanSquaredError(name="mse")])


# --- vocabularies and side features, from the training data ------------------------------------

@dataclass(frozen=True)
class Vocabularies:
    """Ids seen in training and the side features of each, by dense index (0 = OOV)."""

    user_ids: np.ndarray  # sorted unique raw ids; index = position + 1
    movie_ids: np.ndarray
    rating_range: tuple = (1.0, 5.0)  # lowest and highest training rating
    # name -> (row_splits [n + 2], codes int32, vocabulary size); row 0 (OOV) has no values.
    user_side: dict = field(default_factory=dict)
    movie_side: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_movies(self) -> int:
        return len(self.movie_ids)

    def user_index(self, ids: np.ndarray) -> np.ndarray:
        return _index(self.user_ids, ids)

    def movie_index(self, ids: np.ndarray) -> np.ndarray:
        return _index(self.movie_ids, ids)


def _index(vocabulary: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Dense int32 indices of ``ids`` in the sorted ``vocabulary`` (1-based; 0 = unknown)."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(vocabulary):
        return np.zeros(len(ids), np.int32)
    pos = np.minimum(np.searchsorted(vocabulary, ids), len(vocabulary) - 1)
    return np.where(vocabulary[pos] == ids, pos + 1, 0).astype(np.int32)


def _indexed_side(table: data.SideTable, ids: np.ndarray) -> dict:
    aligned = table.aligned(ids)
    return {name: (np.concatenate([[0], feature.row_splits]), feature.codes,
                   len(feature.vocabulary))
            for name, feature in aligned.features.items() if name not in fk.NOT_MODEL_FEATURES}


def build_vocabularies(train: data.Examples, use_side_features: bool = True) -> Vocabularies:
    """Vocabularies, rating range and side-feature tables from the training data."""
    columns = train.columns
    user_ids, movie_ids = np.unique(columns[fk.USER_ID]), np.unique(columns[fk.MOVIE_ID])
    ratings = columns[fk.RATING]
    vocab = Vocabularies(user_ids=user_ids, movie_ids=movie_ids,
                         rating_range=(float(ratings.min()), float(ratings.max())))
    if not use_side_features:
        return vocab
    return dataclasses.replace(vocab, user_side=_indexed_side(train.users, user_ids),
                               movie_side=_indexed_side(train.movies, movie_ids))


# --- members ------------------------------------------------------------------------------------

class Member(tfrs.models.Model):
    """A model of the blend: trained by `fit` on `compute_loss`; scores pairs and whole rows.

    Validation batches are rating pairs {user index, movie index, rating}; the Ranking task
    computes the loss and RMSE/MAE/MSE of the clipped predictions on them.
    """

    def __init__(self, name: str, rating_range: tuple):
        super().__init__(name=name)
        self.rating_range = rating_range
        self.task = _ranking_task()

    def clip(self, ratings: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(ratings, *self.rating_range)

    def predict_pairs(self, user_index: tf.Tensor, movie_index: tf.Tensor) -> tf.Tensor:
        """Unclipped predictions [N] for pairs of known users and movies."""
        raise NotImplementedError

    def score_all(self, user_index: tf.Tensor) -> tf.Tensor:
        """Unclipped predictions [U, n_movies + 1] of users ``user_index`` for every movie."""
        raise NotImplementedError

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
        prediction = self.clip(self.predict_pairs(batch[_USER], batch[_MOVIE]))
        return self.task(labels=batch[fk.RATING], predictions=prediction)

    def call(self, features, training=False):
        return self.predict_pairs(features[_USER], features[_MOVIE])


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
        prediction, penalty = self.factorization(batch[_USER], batch[_MOVIE])
        if training:
            loss = self.task(labels=batch[fk.RATING], predictions=prediction)
        else:
            loss = self.task(labels=batch[fk.RATING], predictions=self.clip(prediction))
        return loss + tf.reduce_mean(penalty)


class _RatingRows:
    """The training ratings grouped by row (CSR): movies for I-AutoRec, users for U-AutoRec.

    ``dense``: whether AutoRec steps should use dense matmuls over all columns (cost per step
    O(rows x columns x units)) rather than gathers of the observed entries (O(entries x
    units), but several times slower per entry; see `AutoRec.reconstruct`): true while at
    least DENSE_MIN_DENSITY of the matrix is observed, so either way an epoch costs
    O(ratings x units).
    """

    def __init__(self, rows: np.ndarray, columns: np.ndarray, ratings: np.ndarray,
                 n_rows: int, n_columns: int):
        order = np.argsort(rows, kind="stable")
        self.counts = np.bincount(rows, minlength=n_rows + 1)
        self.dense = len(ratings) >= DENSE_MIN_DENSITY * n_rows * n_columns
        self.row_splits = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        self.columns = np.asarray(columns, np.int32)[order]
        self.ratings = np.asarray(ratings, np.float32)[order]
        self.n_rows, self.n_columns = n_rows, n_columns
        with tf.init_scope():
            splits = tf.constant(self.row_splits)
            self._columns = tf.RaggedTensor.from_row_splits(tf.constant(self.columns), splits)
            self._ratings = tf.RaggedTensor.from_row_splits(tf.constant(self.ratings), splits)

    def entries(self, rows: tf.Tensor) -> tuple:
        """(position in ``rows``, column, rating) of every training entry of ``rows``."""
        rows = tf.cast(rows, tf.int64)
        columns = tf.gather(self._columns, rows)
        return columns.value_rowids(), columns.values, tf.gather(self._ratings, rows).values

    def sparse(self, first: int, last: int) -> tf.SparseTensor:
        """Rows first..last - 1 as a SparseTensor [last - first, n_columns + 1]."""
        lo, hi = self.row_splits[first], self.row_splits[last]
        row = np.repeat(np.arange(last - first), self.counts[first:last])
        indices = np.stack([row, self.columns[lo:hi].astype(np.int64)], axis=1)
        return tf.SparseTensor(indices, self.ratings[lo:hi], [last - first, self.n_columns + 1])

    def batches(self, max_rows: int, max_ratings: int, seed: int,
                epochs: int) -> tuple[tf.data.Dataset, int]:
        """(dataset of ``epochs`` x steps batches of rows, steps per epoch).

        Every epoch cuts a fresh seeded permutation of the rows that have ratings into the
        same number of equal batches: enough that they average at most ``max_rows`` rows and
        ``max_ratings`` ratings (so a step's memory stays bounded whatever the size of the
        data; Keras needs the same number of steps every epoch). The batches of every epoch
        are drawn up front (epochs x rows int32: 65 MB for 163k users and 100 epochs) and
        sliced by tf.data, so no Python generator runs (and holds the GIL) during training.
        """
        rows = np.flatnonzero(self.counts).astype(np.int32)
        total = int(self.counts.sum())
        steps = max(-(-len(rows) // max_rows), -(-total // max_ratings), 1)
        cuts = np.linspace(0, len(rows), steps + 1).round().astype(np.int64)
        orders = np.concatenate([np.random.default_rng([seed, epoch]).permutation(rows)
                                 for epoch in range(epochs)])
        batches = tf.RaggedTensor.from_row_lengths(orders, np.tile(np.diff(cuts), epochs))
        dataset = tf.data.Dataset.from_tensor_slices(batches).map(lambda batch: {_ROWS: batch})
        return dataset.prefetch(2).with_options(_training_data_options()), steps


class AutoRecModel(Member):
    """AutoRec trained on batches of rows: masked MSE over their observed training ratings
    plus per-entry L2; item-based (rows = movies) or user-based (rows = users)."""

    def __init__(self, name: str, vocab: Vocabularies, item_based: bool, units: int,
                 l2: float, seed: int, matrix: _RatingRows):
        super().__init__(name, vocab.rating_range)
        self.item_based = item_based
        self.autorec = AutoRec(matrix.n_rows, matrix.n_columns, units, seed, name="autorec")
        self.l2 = l2
        self.matrix = matrix

    def _rows_columns(self, user_index, movie_index):
        return (movie_index, user_index) if self.item_based else (user_index, movie_index)

    def predict_pairs(self, user_index, movie_index):
        return self.autorec(*self._rows_columns(user_index, movie_index))

    def score_all(self, user_index):
        if self.item_based:
            return self.autorec.score_columns(user_index)
        return self.autorec.score_rows(user_index)

    def compute_loss(self, batch, training=False):
        if not training:
            return self.validation_loss(batch)
        rows = batch[_ROWS]
        row_of_entry, columns, ratings = self.matrix.entries(rows)
        prediction, penalty = self.autorec.reconstruct(
            row_of_entry, columns, ratings, tf.shape(rows, out_type=tf.int64)[0],
            self.matrix.dense)
        loss = self.task(labels=ratings, predictions=prediction)
        return loss + self.l2 * penalty / tf.cast(tf.shape(ratings)[0], tf.float32)

    def freeze_codes(self, chunk_ratings: int = 1 << 22) -> None:
        """Store every row's code, computed from the training matrix in chunks of rows."""
        splits, first = self.matrix.row_splits, 0
        codes = []
        while first <= self.matrix.n_rows:
            last = int(np.searchsorted(splits, splits[first] + chunk_ratings, side="right"))
            last = min(max(last - 1, first + 1), self.matrix.n_rows + 1)
            codes.append(self.autorec.encode_sparse(self.matrix.sparse(first, last)))
            first = last
        self.autorec.codes.assign(tf.concat(codes, axis=0))


class _FreezeCodes(tf.keras.callbacks.Callback):
    """Before each validation pass, refresh the AutoRec's frozen codes from its weights."""

    def __init__(self, member: AutoRecModel):
        super().__init__()
        self.member = member

    def on_test_begin(self, logs=None):
        self.member.freeze_codes()


# --- the served model ---------------------------------------------------------------------------

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
        self.user_lookup = IdIndex(vocab.user_ids, name="user_lookup")
        self.movie_lookup = IdIndex(vocab.movie_ids, name="movie_lookup")
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
        # by `_fit_blend`; the MF alone until then.
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
        self.task = _ranking_task()

    @property
    def member_names(self) -> List[str]:
        return [member.name for member in self.members]

    def clip(self, ratings: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(ratings, *self.rating_range)

    def indices(self, features) -> dict:
        return {_USER: self.user_lookup(features[fk.USER_ID]),
                _MOVIE: self.movie_lookup(features[fk.MOVIE_ID])}

    def components(self, index: dict) -> tf.Tensor:
        """[B, n_members]: the clipped predictions of every member."""
        return tf.stack([self.clip(m.predict_pairs(index[_USER], index[_MOVIE]))
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
        known = tf.logical_and(index[_USER] > 0, index[_MOVIE] > 0)
        return self._combine(self.components(index),
                             self.blend_features(index[_USER], index[_MOVIE]), known)

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


# --- training -----------------------------------------------------------------------------------

class LazyAdam(tf.keras.optimizers.legacy.Adam):
    """Adam whose sparse (embedding-row) updates of large tables touch only the batch's rows.

    Keras' Adam decays the moments of every row of a table on every step, even for a sparse
    gradient: O(table) per step, so an epoch would cost ratings x table size. Here a sparse
    gradient of a table with more than DENSE_UPDATE_ROWS rows updates the moments and values
    of its rows only (as TF Addons' LazyAdam did). Smaller tables, and dense gradients, get
    plain Adam: a dense step over a few thousand rows is cheaper than deduplicating the rows.
    """

    def _resource_apply_sparse_duplicate_indices(self, grad, handle, indices, **kwargs):
        rows = handle.shape[0]
        if rows is not None and rows <= DENSE_UPDATE_ROWS:
            dense = tf.math.unsorted_segment_sum(grad, indices, rows)
            return self._resource_apply_dense(dense, handle, **kwargs)
        return super()._resource_apply_sparse_duplicate_indices(grad, handle, indices, **kwargs)

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        var_device, var_dtype = var.device, var.dtype.base_dtype
        coefficients = ((apply_state or {}).get((var_device, var_dtype))
                        or self._fallback_apply_state(var_device, var_dtype))
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        m_rows = (coefficients["beta_1_t"] * tf.gather(m, indices)
                  + coefficients["one_minus_beta_1_t"] * grad)
        v_rows = (coefficients["beta_2_t"] * tf.gather(v, indices)
                  + coefficients["one_minus_beta_2_t"] * tf.square(grad))
        step = coefficients["lr"] * m_rows / (tf.sqrt(v_rows) + coefficients["epsilon"])
        return tf.group(m.scatter_update(tf.IndexedSlices(m_rows, indices)),
                        v.scatter_update(tf.IndexedSlices(v_rows, indices)),
                        var.scatter_sub(tf.IndexedSlices(step, indices)))


@dataclass
class TrainResult:
    """The trained model, per-epoch history and what the training measured."""

    model: RatingModel
    history: list  # one dict per epoch: stage, epoch, train_loss, val_loss, val_rmse, val_mae
    members: list  # one dict per member: name, val_rmse, val_mae, best_epoch, epochs_run, seconds
    blend: dict  # names, weights, intercept
    val_rmse: float = float("nan")  # of the final (blended) model on the validation part
    val_mae: float = float("nan")
    train_seconds: float = 0.0
    mf_examples_per_second: float = 0.0  # steady state (median epoch after the first)
    vocabularies: Optional[Vocabularies] = None
    timings: dict = field(default_factory=dict)  # seconds per phase
    skipped: dict = field(default_factory=dict)  # member name -> why it was not trained

    @property
    def blend_weights(self) -> tuple:
        """(intercept, weight of each member), as in metrics.json's blend_weights."""
        return (self.blend["intercept"], *self.blend["weights"])

    def best_epoch(self, name: str = MF) -> int:
        return next((m["best_epoch"] for m in self.members if m["name"] == name), 0)


def split_validation(examples: data.Examples, fraction: float, seed: int):
    """A seeded random (fit, validation) partition (see `data.split_validation`)."""
    return data.split_validation(examples, fraction, seed)


def _indexed(examples: data.Examples, vocab: Vocabularies) -> dict:
    columns = examples.columns
    return {_USER: vocab.user_index(columns[fk.USER_ID]),
            _MOVIE: vocab.movie_index(columns[fk.MOVIE_ID]),
            fk.RATING: np.asarray(columns[fk.RATING], dtype=np.float32)}


def _shuffled_batches(tensors: Mapping[str, np.ndarray], batch_size: int, seed: int,
                      epochs: int) -> tuple[tf.data.Dataset, int]:
    """(dataset of ``epochs`` x steps batches, steps per epoch) from in-memory arrays.

    Each epoch gathers whole batches from a fresh seeded permutation (no per-example tf.data
    work); the last partial batch of each epoch is dropped, a different one every epoch.
    """
    n = len(next(iter(tensors.values())))
    batch_size = min(batch_size, n)
    steps = n // batch_size
    constants = {key: tf.constant(value) for key, value in tensors.items()}

    @tf.autograph.experimental.do_not_convert
    def permutation(epoch):
        keys = tf.random.stateless_uniform([n], seed=tf.stack([tf.constant(seed, tf.int64),
                                                               epoch]))
        order = tf.argsort(keys)[:steps * batch_size]
        return tf.reshape(tf.cast(order, tf.int32), [steps, batch_size])

    @tf.autograph.experimental.do_not_convert
    def gather(rows):
        return {key: tf.gather(value, rows) for key, value in constants.items()}

    dataset = (tf.data.Dataset.range(epochs).map(permutation).unbatch()
               .map(gather, num_parallel_calls=2, deterministic=True)
               .prefetch(2).with_options(_training_data_options()))
    return dataset, steps


def _training_data_options() -> tf.data.Options:
    """tf.data options of the members' training datasets: fixed parallelism, no autotuning.

    Early stopping ends `fit` before its dataset is exhausted, and Python's garbage collector
    frees the abandoned iterator later, at any allocation. With tf.data's autotuning on, that
    freeing blocked the main thread for 10-20 s at a time (ML-1M size, 3 trainings: 5 such
    pauses, gen-0 collections of 5 objects taking 9.7-20.0 s; with it off, none in 3). The
    pipelines are a gather per batch: two parallel calls and a prefetch of two batches keep
    the trainer busy.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _validation_batches(val: Mapping[str, np.ndarray]) -> tf.data.Dataset:
    """The known pairs of the validation part, in large batches."""
    known = (val[_USER] > 0) & (val[_MOVIE] > 0)
    return tf.data.Dataset.from_tensor_slices(
        {key: value[known] for key, value in val.items()}).batch(_VALIDATION_BATCH).cache()


class _EpochLog(tf.keras.callbacks.Callback):
    """Turns each epoch's Keras logs into a metrics.json history entry (and a log line)."""

    def __init__(self, stage: str, history: list):
        super().__init__()
        self.stage, self.history = stage, history
        self.seconds: List[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.seconds.append(time.perf_counter() - self._start)
        entry = {"stage": self.stage, "epoch": len(self.history) + 1, "stage_epoch": epoch + 1}
        for key, name in (("train_loss", "loss"), ("train_rmse", "rmse"), ("val_loss", "val_loss"),
                          ("val_rmse", "val_rmse"), ("val_mae", "val_mae"),
                          ("val_mse", "val_mse"), ("learning_rate", "lr")):
            if name in logs:
                entry[key] = float(logs[name])
        entry["seconds"] = self.seconds[-1]
        self.history.append(entry)
        logging.info("%s epoch %d: train loss %.4f, val RMSE %.4f, MAE %.4f (%.1f s)",
                     self.stage, epoch + 1, logs.get("loss", float("nan")),
                     logs.get("val_rmse", float("nan")), logs.get("val_mae", float("nan")),
                     self.seconds[-1])


def _fit(member: Member, train: tf.data.Dataset, steps: int,
         validation: tf.data.Dataset, epochs: int, learning_rate: float, decay: float,
         hparams: HParams, history: list, log_dir: Optional[str],
         callbacks: Sequence[tf.keras.callbacks.Callback]) -> dict:
    """Train ``member`` with Keras fit until its validation RMSE stops improving."""
    start = time.perf_counter()
    # Several steps per call of Keras' training function save per-step overhead.
    member.compile(optimizer=LazyAdam(learning_rate), steps_per_execution=_STEPS_PER_EXECUTION)
    epoch_log = _EpochLog(member.name, history)
    stopping = tf.keras.callbacks.EarlyStopping(
        monitor="val_rmse", mode="min", patience=hparams.patience, min_delta=hparams.min_delta,
        restore_best_weights=True)
    fit_callbacks = [*(member_callbacks(member)), epoch_log, stopping,
                     tf.keras.callbacks.LearningRateScheduler(
                         lambda epoch: learning_rate * decay ** epoch)]
    if log_dir:
        fit_callbacks.append(tf.keras.callbacks.TensorBoard(
            log_dir=os.path.join(log_dir, member.name), write_graph=False, profile_batch=0))
    member.fit(train, steps_per_epoch=steps, epochs=epochs, validation_data=validation,
               callbacks=fit_callbacks + list(callbacks), verbose=0)
    # The optimizer's slots (two per weight) and the traced functions holding them and the
    # training data are not needed any more: free them before the next member trains.
    member.optimizer = member.train_function = member.test_function = None
    entries = [e for e in history if e["stage"] == member.name]
    best = entries[stopping.best_epoch]  # the epoch whose weights EarlyStopping restored
    return {"name": member.name, "val_rmse": best["val_rmse"], "val_mae": best["val_mae"],
            "best_epoch": int(best["stage_epoch"]), "epochs_run": len(entries),
            "seconds": time.perf_counter() - start,
            "epoch_seconds": list(epoch_log.seconds)}


def member_callbacks(member: Member) -> list:
    return [_FreezeCodes(member)] if isinstance(member, AutoRecModel) else []


def _train_mf(train: dict, val_batches, vocab: Vocabularies, hparams: HParams, history: list,
              log_dir, callbacks) -> tuple[MatrixFactorization, dict]:
    model = MatrixFactorization(vocab, hparams, float(np.mean(train[fk.RATING])))
    dataset, steps = _shuffled_batches(train, hparams.batch_size, hparams.seed, hparams.epochs)
    info = _fit(model, dataset, steps, val_batches, hparams.epochs, hparams.learning_rate,
                hparams.lr_decay, hparams, history, log_dir, callbacks)
    later = info["epoch_seconds"][1:] or info["epoch_seconds"]
    info["examples_per_second"] = (steps * min(hparams.batch_size, len(train[fk.RATING]))
                                   / float(np.median(later)))
    return model, info


def _train_autorec(name: str, item_based: bool, train: dict, val_batches, vocab: Vocabularies,
                   hparams: HParams, history: list, log_dir, callbacks):
    rows, columns = (_MOVIE, _USER) if item_based else (_USER, _MOVIE)
    n_rows, n_columns = ((vocab.n_movies, vocab.n_users) if item_based
                         else (vocab.n_users, vocab.n_movies))
    matrix = _RatingRows(train[rows], train[columns], train[fk.RATING], n_rows, n_columns)
    if item_based:
        units, l2, rate, decay, seed = (hparams.autorec_units, hparams.autorec_l2,
                                        hparams.autorec_learning_rate,
                                        hparams.autorec_lr_decay, hparams.seed + 30)
    else:
        units, l2, rate, decay, seed = (hparams.user_autorec_units, hparams.user_autorec_l2,
                                        hparams.user_autorec_learning_rate,
                                        hparams.user_autorec_lr_decay, hparams.seed + 40)
    model = AutoRecModel(name, vocab, item_based, units, l2, seed, matrix)
    dataset, steps = matrix.batches(hparams.autorec_batch_size, hparams.autorec_batch_ratings,
                                    seed + 1, hparams.autorec_epochs)
    info = _fit(model, dataset, steps, val_batches, hparams.autorec_epochs, rate, decay,
                hparams, history, log_dir, callbacks)
    model.freeze_codes()  # from the restored best weights
    model.matrix = None  # the rows were for training; serving decodes the frozen codes
    return model, info


def support(index: np.ndarray, n: int) -> np.ndarray:
    """Per entity index [n + 1]: log(1 + training count), standardised over the ratings."""
    log_counts = np.log1p(np.bincount(index, minlength=n + 1)).astype(np.float64)
    per_rating = log_counts[index]
    return ((log_counts - per_rating.mean()) / max(per_rating.std(), 1e-6)).astype(np.float32)


def _fit_blend(model: RatingModel, val: dict, by_support: bool, calibrate: bool) -> dict:
    """Least-squares stacking weights, then the calibration, on the known pairs of ``val``."""
    known = (val[_USER] > 0) & (val[_MOVIE] > 0)
    index = {key: tf.constant(val[key][known]) for key in (_USER, _MOVIE)}
    parts = model.components(index).numpy().astype(np.float64)
    features = model.blend_features(index[_USER], index[_MOVIE]).numpy().astype(np.float64)
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


def train_model(train: data.Examples, validation: data.Examples, hparams: HParams = HParams(),
                log_dir: Optional[str] = None,
                callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> TrainResult:
    """Train every member, then fit the blend on the validation part.

    ``validation`` is carved from the training split by the caller (`split_validation`); it
    drives early stopping (best weights restored) and the blend weights. ``log_dir`` gets the
    stock TensorBoard logs of each member (one folder per member); ``callbacks`` (Keras
    callbacks) are passed to every member's fit.
    """
    start = time.perf_counter()
    timings: Dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = time.perf_counter() - start - sum(timings.values())

    tf.keras.utils.set_random_seed(hparams.seed)
    vocab = build_vocabularies(train, hparams.use_side_features)
    train_index, val_index = _indexed(train, vocab), _indexed(validation, vocab)
    val_batches = _validation_batches(val_index)
    lap("vocabularies")
    history: list = []
    mf, mf_info = _train_mf(train_index, val_batches, vocab, hparams, history, log_dir,
                            callbacks)
    members, infos = [mf], [mf_info]
    lap(MF)
    skipped = autorecs_skipped(len(train_index[fk.RATING]), hparams)
    if skipped:
        logging.warning("not training %s: %s", ", ".join(skipped), skipped[ITEM_AUTOREC])
    if hparams.blend:
        for name, item_based, enabled in ((ITEM_AUTOREC, True, True),
                                          (USER_AUTOREC, False, hparams.user_autorec)):
            if enabled and name not in skipped:
                member, info = _train_autorec(name, item_based, train_index, val_batches,
                                              vocab, hparams, history, log_dir, callbacks)
                members.append(member)
                infos.append(info)
                lap(name)
    # Everything the user rated in the train split (validation part included) is not a
    # candidate for recommendation.
    rated_users = np.concatenate([train_index[_USER], val_index[_USER]])
    rated_movies = np.concatenate([train_index[_MOVIE], val_index[_MOVIE]])
    seen = (rated_users > 0) & (rated_movies > 0)
    rated = RatedMovies(rated_users[seen], rated_movies[seen], vocab.n_users, name="rated")
    cold_start = cold_start_scores(
        rated_movies[seen], np.concatenate([train_index[fk.RATING], val_index[fk.RATING]])[seen],
        vocab.n_movies)
    model = RatingModel(vocab, members, rated, cold_start,
                        support(train_index[_USER], vocab.n_users),
                        support(train_index[_MOVIE], vocab.n_movies))
    blend = _fit_blend(model, val_index, hparams.blend_by_support, hparams.calibrate)
    model.compile()
    val_metrics = _error_metrics(predict(model, validation.columns),
                                 validation.columns[fk.RATING])
    lap("blend")
    logging.info("trained in %.1f s (%s); validation RMSE %.4f, MAE %.4f; blend %s",
                 time.perf_counter() - start,
                 ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
                 val_metrics["rmse"], val_metrics["mae"], blend)
    for info in infos:
        info.pop("epoch_seconds", None)
    return TrainResult(
        model=model, history=history, members=[
            {k: v for k, v in info.items() if k != "examples_per_second"} for info in infos],
        blend=blend, val_rmse=val_metrics["rmse"], val_mae=val_metrics["mae"],
        train_seconds=time.perf_counter() - start,
        mf_examples_per_second=mf_info["examples_per_second"], vocabularies=vocab,
        timings=timings, skipped=skipped)


def autorecs_skipped(n_ratings: int, hparams: HParams) -> Dict[str, str]:
    """AutoRec member name -> why it is not trained, for a fit part of ``n_ratings`` ratings."""
    limit = hparams.autorec_max_ratings
    if not hparams.blend or not limit or n_ratings <= limit:
        return {}
    reason = (f"{n_ratings:,} training ratings exceed autorec_max_ratings={limit:,} (AutoRec "
              "training cost grows faster than the data); the model is the MF alone. "
              "--hparam autorec_max_ratings=0 trains them anyway")
    names = [ITEM_AUTOREC] + ([USER_AUTOREC] if hparams.user_autorec else [])
    return {name: reason for name in names}


def _error_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict:
    error = np.asarray(predictions, np.float64) - np.asarray(labels, np.float64)
    if not len(error):
        return {"rmse": float("nan"), "mae": float("nan")}
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error)))}


# --- prediction and export ----------------------------------------------------------------------

def _predict_fn(model: RatingModel):
    fn = getattr(model, "_kiko_predict_fn", None)
    if fn is None:
        fn = tf.function(lambda users, movies: model({fk.USER_ID: users, fk.MOVIE_ID: movies}),
                         input_signature=[tf.TensorSpec([None], tf.int64)] * 2, autograph=False)
        model._kiko_predict_fn = fn
    return fn


def predict(model: RatingModel, features: Mapping[str, np.ndarray]) -> np.ndarray:
    """Ratings (float32, clipped to the training range) for the id pairs in ``features``."""
    users = np.asarray(features[fk.USER_ID], dtype=np.int64)
    movies = np.asarray(features[fk.MOVIE_ID], dtype=np.int64)
    fn = _predict_fn(model)
    out = [fn(tf.constant(users[i:i + _PREDICT_BATCH]), tf.constant(movies[i:i + _PREDICT_BATCH]))
           .numpy() for i in range(0, len(users), _PREDICT_BATCH)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


class _ServingModule(tf.Module):
    """What is exported: the model and its signatures."""

    def __init__(self, model: RatingModel):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=fk.USER_ID),
                                  tf.TensorSpec([None], tf.int64, name=fk.MOVIE_ID)],
                 autograph=False)
    def predict_ratings(self, user_id, movie_id):
        return {OUTPUT_KEY: self.model({fk.USER_ID: user_id, fk.MOVIE_ID: movie_id})}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=fk.USER_ID),
                                  tf.TensorSpec([], tf.int32, name=fk.RECOMMEND_K)],
                 autograph=False)
    def recommend(self, user_id, k):
        return self.model.recommend(user_id, k)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                 autograph=False)
    def serve_examples(self, examples):
        # Side features in the Example are not needed: the model looks them up by id.
        spec = {fk.USER_ID: tf.io.FixedLenFeature([], tf.int64, default_value=0),
                fk.MOVIE_ID: tf.io.FixedLenFeature([], tf.int64, default_value=0)}
        parsed = tf.io.parse_example(examples, spec)
        return {OUTPUT_KEY: self.model(parsed)}


def export_saved_model(model: RatingModel, export_dir: str,
                       extra_signatures: Optional[Mapping[str, tf.Module]] = None,
                       catalog: Optional[Mapping[str, Sequence]] = None) -> str:
    """Write a SavedModel with `serving_default` (tf.Example), `predict_ratings` (ids) and
    `recommend` (user ids, k), plus the movie catalog when there is one.

    `extra_signatures` maps more signature names to modules whose tf.function of that name
    has an input signature (e.g. TFMA's `transform_features` for slicing). `catalog` (see
    `write_movie_catalog`) goes to assets.extra/ inside the SavedModel.
    """
    module = _ServingModule(model)
    signatures = {SERVING_SIGNATURE: module.serve_examples.get_concrete_function(),
                  PREDICT_SIGNATURE: module.predict_ratings.get_concrete_function(),
                  fk.RECOMMEND_SIGNATURE: module.recommend.get_concrete_function()}
    for name, extra in (extra_signatures or {}).items():
        setattr(module, f"_extra_{name}", extra)
        signatures[name] = getattr(extra, name).get_concrete_function()
    tf.saved_model.save(module, export_dir, signatures=signatures)
    if catalog is not None:
        write_movie_catalog(catalog, export_dir)
    return export_dir


def _catalog_field(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines())


def write_movie_catalog(catalog: Mapping[str, Sequence], export_dir: str) -> str:
    """Write `features.MOVIE_CATALOG_FILE` into the SavedModel's `assets.extra/`.

    ``catalog`` maps `features.CATALOG_COLUMNS` to parallel sequences: movie ids, titles (str)
    and genre tuples (of str). Returns the file's path.
    """
    folder = os.path.join(export_dir, fk.SAVED_MODEL_EXTRA_DIR)
    tf.io.gfile.makedirs(folder)
    path = os.path.join(folder, fk.MOVIE_CATALOG_FILE)
    lines = ["\t".join(fk.CATALOG_COLUMNS)]
    for movie_id, title, genres in zip(*(catalog[c] for c in fk.CATALOG_COLUMNS)):
        lines.append(f"{int(movie_id)}\t{_catalog_field(title)}\t"
                     + fk.CATALOG_GENRE_SEPARATOR.join(_catalog_field(g) for g in genres))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def read_movie_catalog(saved_model_dir: str) -> Optional[dict]:
    """movie id -> (title, genre tuple) from a SavedModel's catalog; None when it has none."""
    path = os.path.join(saved_model_dir, fk.SAVED_MODEL_EXTRA_DIR, fk.MOVIE_CATALOG_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        header, *rows = f.read().splitlines()
    if tuple(header.split("\t")) != fk.CATALOG_COLUMNS:
        raise ValueError(f"{path}:1: expected the header {chr(9).join(fk.CATALOG_COLUMNS)!r}, "
                         f"got {header!r}")
    catalog = {}
    for line_number, row in enumerate(rows, start=2):
        fields = row.split("\t")
        if len(fields) != len(fk.CATALOG_COLUMNS) or not fields[0].isdigit():
            raise ValueError(f"{path}:{line_number}: expected movie_id, title and genres "
                             f"separated by tabs, got {row!r}")
        genres = tuple(fields[2].split(fk.CATALOG_GENRE_SEPARATOR)) if fields[2] else ()
        catalog[int(fields[0])] = (fields[1], genres)
    return catalog
