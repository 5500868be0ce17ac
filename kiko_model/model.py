"""The kiko rating model: a validation-fitted blend of biased MF with side features and I-AutoRec.

Design (measured in benchmarks/model_quality.py; MODELING_NOTES.md is the map it follows):

* `MatrixFactorizationModel`: mu + biases + <p_u + s_u, q_m + s_m>, where s_u / s_m are the
  L2-regularised side-feature vectors (gender, age, occupation, zip prefix; year, genres) looked
  up by id from tables built at training time. Adam on large batches with per-epoch learning
  rate decay and SVD-style per-example L2; early stopping on validation RMSE.
* `AutoRecModel`: item-based AutoRec (I-AutoRec) trained on the movies' sparse training-rating
  columns; after training each movie's code is frozen, so serving needs no rating matrix.
* `RatingModel` (what `train_model` returns and `export_saved_model` writes): raw ids -> the
  blend a + w_mf * mf + w_ar * ar, then a piecewise-linear calibration, both fit by least
  squares on the validation part. An unknown user or movie falls back to the MF's known biases
  (the global mean when both are unknown). Predictions are clipped to [1, 5].

Every model is a `tfrs.models.Model` owning a `tfrs.tasks.Ranking` task (MSE loss; RMSE, MAE,
MSE metrics). Training data is a dict of in-memory NumPy arrays keyed by `features` keys; the
loops are tf.functions without autograph over batches gathered from in-memory tensors.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
from absl import logging

from kiko_model import features as fk
from kiko_model.hparams import HParams
from kiko_model.layers import BiasedFactorization, IdIndex, ItemAutoRec, RatedMovies, SideFeatures

MIN_RATING, MAX_RATING = 1.0, 5.0
OUTPUT_KEY = fk.PREDICTION_KEY
SERVING_SIGNATURE = fk.SERVING_SIGNATURE
PREDICT_SIGNATURE = fk.PREDICT_SIGNATURE
_USER_INDEX, _MOVIE_INDEX = "user_index", "movie_index"  # dense indices, 0 = OOV
_MOVIES = "movies"  # AutoRec batches: movie indices
_PREDICT_BATCH = 65536
# Knots of the piecewise-linear calibration of the blended score, in rating units.
CALIBRATION_KNOTS = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5)
_CALIBRATION_RIDGE = 1.0
# Prior weight (in ratings at the global mean) of the damped mean that ranks movies for users
# the model does not know.
COLD_START_PRIOR_RATINGS = 50

Data = Mapping[str, np.ndarray]


def _ranking_task() -> tfrs.tasks.Ranking:
    return tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(),
        metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse"),
                 tf.keras.metrics.MeanAbsoluteError(name="mae"),
                 tf.keras.metrics.MeanSquaredError(name="mse")])


def _clip(ratings: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(ratings, MIN_RATING, MAX_RATING)


# --- vocabularies and side-feature tables, from the training data -----------------------------

@dataclass(frozen=True)
class Vocabularies:
    """Ids seen in training and the side features of each, as index tables (row 0 = OOV)."""

    user_ids: np.ndarray  # sorted unique raw ids; index = position + 1
    movie_ids: np.ndarray
    user_side: dict = field(default_factory=dict)  # name -> int64 [n_users + 1], 0 = unknown
    movie_side: dict = field(default_factory=dict)
    movie_genres: Optional[np.ndarray] = None  # float [n_movies + 1, n_genres] multi-hot
    genre_names: tuple = ()

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
    ids = np.asarray(ids, dtype=np.int64)
    pos = np.searchsorted(vocabulary, ids)
    pos_clipped = np.minimum(pos, len(vocabulary) - 1)
    found = vocabulary[pos_clipped] == ids
    return np.where(found, pos_clipped + 1, 0).astype(np.int64)


def _category_table(values: np.ndarray, entity_index: np.ndarray, n_entities: int,
                    skip=None) -> np.ndarray:
    """Per-entity category index [n_entities + 1] (first value seen per entity; 0 = unknown)."""
    values = np.asarray(values)
    if values.dtype == object:
        values = values.astype(bytes)
    codes = np.unique(values, return_inverse=True)[1]
    codes = codes.astype(np.int64) + 1
    if skip is not None:
        codes[values == skip] = 0
    table = np.zeros(n_entities + 1, dtype=np.int64)
    first = np.unique(entity_index, return_index=True)[1]
    table[entity_index[first]] = codes[first]
    return table


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def build_vocabularies(train: Data, use_side_features: bool = True) -> Vocabularies:
    """Vocabularies and side-feature tables from the training data (never hard-coded sizes)."""
    user_ids = np.unique(np.asarray(train[fk.USER_ID], dtype=np.int64))
    movie_ids = np.unique(np.asarray(train[fk.MOVIE_ID], dtype=np.int64))
    vocab = Vocabularies(user_ids=user_ids, movie_ids=movie_ids)
    if not use_side_features:
        return vocab
    users, movies = vocab.user_index(train[fk.USER_ID]), vocab.movie_index(train[fk.MOVIE_ID])
    user_side = {name: _category_table(train[name], users, vocab.n_users)
                 for name in (fk.GENDER, fk.AGE, fk.OCCUPATION, fk.ZIP_PREFIX) if name in train}
    movie_side = {}
    if fk.YEAR in train:
        movie_side[fk.YEAR] = _category_table(train[fk.YEAR], movies, vocab.n_movies, skip=0)
    genres, genre_names = None, ()
    if fk.GENRES in train:
        first = np.unique(movies, return_index=True)[1]  # one row per movie is enough
        lists = {int(movies[row]): [_text(g) for g in train[fk.GENRES][row]] for row in first}
        genre_names = tuple(sorted({g for row in lists.values() for g in row}))
        if genre_names:
            position = {g: i for i, g in enumerate(genre_names)}
            genres = np.zeros((vocab.n_movies + 1, len(genre_names)), dtype=np.float32)
            for movie, names in lists.items():
                genres[movie, [position[g] for g in names]] = 1.0
    return dataclasses.replace(vocab, user_side=user_side, movie_side=movie_side,
                               movie_genres=genres, genre_names=genre_names)


# --- the models ---------------------------------------------------------------------------------

class MatrixFactorizationModel(tfrs.models.Model):
    """Biased MF with side features, on dense indices; loss = MSE + mean per-example L2."""

    def __init__(self, vocab: Vocabularies, hparams: HParams, global_mean: float):
        super().__init__()
        dim, seed = hparams.embedding_dim, hparams.seed
        user_side = (SideFeatures(vocab.user_side, None, dim, seed + 10, name="user_side")
                     if vocab.user_side else None)
        movie_side = (SideFeatures(vocab.movie_side, vocab.movie_genres, dim, seed + 20,
                                   name="movie_side")
                      if vocab.movie_side or vocab.movie_genres is not None else None)
        self.factorization = BiasedFactorization(
            vocab.n_users, vocab.n_movies, dim, global_mean, hparams.l2_factors,
            hparams.l2_biases, hparams.l2_side, seed, user_side, movie_side,
            name="factorization")
        self.task = _ranking_task()

    def call(self, features, training=False):
        prediction, _ = self.factorization(features[_USER_INDEX], features[_MOVIE_INDEX])
        return prediction

    def compute_loss(self, features, training=False):
        prediction, penalty = self.factorization(features[_USER_INDEX], features[_MOVIE_INDEX])
        loss = self.task(labels=features[fk.RATING], predictions=prediction,
                         compute_metrics=not training)
        return loss + tf.reduce_mean(penalty)


class AutoRecModel(tfrs.models.Model):
    """I-AutoRec trained on batches of movies: masked MSE over their observed training ratings."""

    def __init__(self, vocab: Vocabularies, hparams: HParams, matrix: "_RatingMatrix"):
        super().__init__()
        self.autorec = ItemAutoRec(vocab.n_users, vocab.n_movies, hparams.autorec_units,
                                   hparams.seed + 30, name="autorec")
        self.weight_decay = hparams.autorec_weight_decay
        self._matrix = matrix
        self.task = _ranking_task()

    def call(self, features, training=False):
        return self.autorec(features[_USER_INDEX], features[_MOVIE_INDEX])

    def compute_loss(self, features, training=False):
        movies = features[_MOVIES]
        row_ids, users, ratings = self._matrix.rows(movies)
        sparse = tf.SparseTensor(tf.stack([row_ids, users], axis=1), ratings,
                                 [tf.shape(movies, out_type=tf.int64)[0],
                                  self.autorec.n_users + 1])
        codes = self.autorec.encode(sparse)
        # Dense [B, users] decoding: a matmul is faster than gathering [entries, units].
        prediction = tf.gather_nd(self.autorec.decode_all(codes),
                                  tf.stack([row_ids, users], axis=1))
        loss = self.task(labels=ratings, predictions=prediction, compute_metrics=False)
        return loss + self.weight_decay * self.autorec.penalty()


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
    """The served model: raw ids -> clipped blend of MF and AutoRec (MF alone for unknown ids).

    It also recommends (`recommend`): from the training ratings it keeps which movies each
    user rated (`RatedMovies`) and the cold-start ranking of `cold_start_scores`.
    """

    def __init__(self, vocab: Vocabularies, mf: MatrixFactorizationModel,
                 autorec: Optional[AutoRecModel], rated: RatedMovies,
                 cold_start: np.ndarray):
        super().__init__()
        self.user_lookup = IdIndex(vocab.user_ids, name="user_lookup")
        self.movie_lookup = IdIndex(vocab.movie_ids, name="movie_lookup")
        self.mf = mf
        self.autorec = autorec
        self.rated = rated
        self.cold_start = tf.Variable(cold_start, trainable=False, name="cold_start")
        self.movie_ids = tf.Variable(
            np.concatenate([[fk.NO_MOVIE_ID], vocab.movie_ids]).astype(np.int64),
            trainable=False, name="movie_ids")  # movie index -> raw id
        # s = a + w_mf * mf + w_ar * ar, then the calibration b0 + b1 * s + sum_j c_j relu(s - k_j)
        # (a monotone-ish correction: ratings are ordinal, their conditional mean is not linear
        # in the score). Both are fit on the validation part by `_fit_blend`; identity until then.
        self.blend_weights = tf.Variable([0.0, 1.0, 0.0], trainable=False, name="blend_weights")
        self.knots = tf.constant(CALIBRATION_KNOTS, tf.float32)
        self.calibration = tf.Variable([0.0, 1.0] + [0.0] * len(CALIBRATION_KNOTS),
                                       trainable=False, name="calibration")
        self.task = _ranking_task()

    def indices(self, features) -> dict:
        return {_USER_INDEX: self.user_lookup(features[fk.USER_ID]),
                _MOVIE_INDEX: self.movie_lookup(features[fk.MOVIE_ID])}

    def components(self, index: dict) -> tf.Tensor:
        """[B, 2]: clipped MF and AutoRec predictions (the MF twice without an AutoRec)."""
        mf = _clip(self.mf(index))
        ar = _clip(self.autorec(index)) if self.autorec is not None else mf
        return tf.stack([mf, ar], axis=1)

    def calibrate(self, score: tf.Tensor) -> tf.Tensor:
        hinges = tf.nn.relu(score[..., tf.newaxis] - self.knots)
        return (self.calibration[0] + self.calibration[1] * score
                + tf.reduce_sum(hinges * self.calibration[2:], axis=-1))

    def _combine(self, parts: tf.Tensor, known: tf.Tensor) -> tf.Tensor:
        """Calibrated blend of ``parts`` [..., 2] where ``known``, else the MF part."""
        score = self.blend_weights[0] + tf.reduce_sum(parts * self.blend_weights[1:], axis=-1)
        return tf.where(known, self.calibrate(score), parts[..., 0])

    def blend(self, index: dict) -> tf.Tensor:
        known = tf.logical_and(index[_USER_INDEX] > 0, index[_MOVIE_INDEX] > 0)
        return self._combine(self.components(index), known)

    def score_all(self, user_index: tf.Tensor) -> tf.Tensor:
        """Unclipped blend [U, n_movies + 1] of users ``user_index`` for every movie index."""
        mf = _clip(self.mf.factorization.score_all(user_index))
        ar = _clip(self.autorec.autorec.score_all(user_index)) if self.autorec is not None else mf
        movie_known = tf.range(tf.shape(mf, out_type=tf.int64)[1]) > 0
        known = tf.logical_and((user_index > 0)[:, tf.newaxis], movie_known[tf.newaxis, :])
        return self._combine(tf.stack([mf, ar], axis=-1), known)

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
            fk.RECOMMENDED_RATINGS: tf.where(found, tf.gather(_clip(scores), movies,
                                                              batch_dims=1), 0.0),
        }

    def call(self, features, training=False):
        return _clip(self.blend(self.indices(features)))

    def compute_loss(self, features, training=False):
        return self.task(labels=features[fk.RATING], predictions=self(features))


# --- training -----------------------------------------------------------------------------------

class _RatingMatrix:
    """The training ratings as movie rows (CSR over users), for AutoRec batches and codes."""

    def __init__(self, movie_index: np.ndarray, user_index: np.ndarray, ratings: np.ndarray,
                 n_movies: int, n_users: int):
        order = np.lexsort((user_index, movie_index))
        counts = np.bincount(movie_index, minlength=n_movies + 1)
        self.row_splits = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.users = user_index[order].astype(np.int64)
        self.movies = movie_index[order].astype(np.int64)
        self.ratings = np.asarray(ratings, dtype=np.float32)[order]
        self.n_movies, self.n_users = n_movies, n_users
        with tf.init_scope():
            self._positions = tf.RaggedTensor.from_row_splits(
                tf.range(len(self.users), dtype=tf.int64), tf.constant(self.row_splits))
            self._users, self._ratings = tf.constant(self.users), tf.constant(self.ratings)

    def rows(self, movies: tf.Tensor) -> tuple:
        """(row ids within the batch, user indices, ratings) of the entries of ``movies``."""
        batch = tf.gather(self._positions, movies)
        flat = batch.values
        return batch.value_rowids(), tf.gather(self._users, flat), tf.gather(self._ratings, flat)

    def sparse(self) -> tf.SparseTensor:
        indices = np.stack([self.movies, self.users], axis=1)
        return tf.SparseTensor(indices, self.ratings, [self.n_movies + 1, self.n_users + 1])


@dataclass
class TrainResult:
    """The trained model, per-epoch history and what the training measured."""

    model: RatingModel
    history: list  # one dict per epoch: stage, epoch, train_loss, val_loss, val_rmse, val_mae
    best_epoch: int  # best MF epoch (1-based)
    autorec_best_epoch: int = 0
    blend_weights: tuple = ()
    val_rmse: float = float("nan")  # of the final (blended) model on the validation part
    val_mae: float = float("nan")
    train_seconds: float = 0.0
    mf_examples_per_second: float = 0.0  # steady state (median epoch after the first)
    vocabularies: Optional[Vocabularies] = None
    timings: dict = field(default_factory=dict)  # seconds per phase


def split_validation(data: Data, fraction: float, seed: int) -> tuple[dict, dict]:
    """A random (train, validation) partition of ``data`` with ``fraction`` in validation."""
    n = len(data[fk.RATING])
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction))
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return _take(data, train), _take(data, val)


def _take(data: Data, rows: np.ndarray) -> dict:
    out = {}
    for key, values in data.items():
        if isinstance(values, np.ndarray):
            out[key] = values[rows]
        else:
            out[key] = [values[i] for i in rows]
    return out


def _schedule(rate: float, decay: float, steps_per_epoch: int):
    if decay >= 1.0:
        return rate
    return tf.keras.optimizers.schedules.ExponentialDecay(
        rate, decay_steps=steps_per_epoch, decay_rate=decay, staircase=True)


def _optimizer(rate: float, decay: float, steps_per_epoch: int):
    # The legacy Adam: ~10 % faster steps than the new one on embedding tables, same results.
    return tf.keras.optimizers.legacy.Adam(_schedule(rate, decay, steps_per_epoch))


def _indexed(data: Data, vocab: Vocabularies) -> dict:
    return {_USER_INDEX: vocab.user_index(data[fk.USER_ID]),
            _MOVIE_INDEX: vocab.movie_index(data[fk.MOVIE_ID]),
            fk.RATING: np.asarray(data[fk.RATING], dtype=np.float32)}


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
        return tf.reshape(tf.cast(order, tf.int64), [steps, batch_size])

    @tf.autograph.experimental.do_not_convert
    def gather(rows):
        return {key: tf.gather(value, rows) for key, value in constants.items()}

    dataset = (tf.data.Dataset.range(epochs).map(permutation).unbatch()
               .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
               .prefetch(tf.data.AUTOTUNE))
    return dataset, steps


def _error_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict:
    error = np.asarray(predictions, np.float64) - np.asarray(labels, np.float64)
    mse = float(np.mean(error ** 2)) if len(error) else float("nan")
    return {"val_rmse": mse ** 0.5, "val_mae": float(np.mean(np.abs(error))) if len(error)
            else float("nan")}


def _fit_stage(stage: str, model: tfrs.models.Model, dataset: tf.data.Dataset, steps: int,
               epochs: int, optimizer, validate, hparams: HParams, history: list,
               callbacks: tf.keras.callbacks.CallbackList) -> list:
    """Train ``model`` on ``dataset`` with early stopping on ``validate()["val_rmse"]``.

    The step is a tf.function without autograph: tracing Keras internals through autograph
    costs ~5 s per model, more than a whole MF epoch. Restores the best epoch's weights and
    returns the seconds of each epoch.
    """
    variables = model.trainable_variables

    @tf.function(autograph=False)
    def train_step(batch):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(batch, training=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    batches = iter(dataset)
    best_rmse, best_weights, wait, seconds = float("inf"), None, 0, []
    for epoch in range(epochs):
        callbacks.on_epoch_begin(len(history))
        start = time.perf_counter()
        total = tf.constant(0.0)
        for _ in range(steps):
            total += train_step(next(batches))
        train_loss = float(total.numpy()) / steps
        seconds.append(time.perf_counter() - start)
        logs = {"loss": train_loss, **validate()}
        entry = {"stage": stage, "epoch": len(history) + 1, "stage_epoch": epoch + 1,
                 "train_loss": train_loss, "val_loss": logs["val_loss"],
                 "val_rmse": logs["val_rmse"], "val_mae": logs["val_mae"],
                 "seconds": seconds[-1]}
        history.append(entry)
        logging.info("%s epoch %d: train loss %.4f, val loss %.4f, val RMSE %.4f, MAE %.4f "
                     "(%.1f s)", stage, epoch + 1, train_loss, entry["val_loss"],
                     entry["val_rmse"], entry["val_mae"], seconds[-1])
        callbacks.on_epoch_end(len(history) - 1, dict(logs))
        if logs["val_rmse"] < best_rmse:
            best_rmse, best_weights, wait = logs["val_rmse"], model.get_weights(), 0
        else:
            wait += 1
            if wait >= hparams.patience:
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    return seconds


def _best_epoch(history: list, stage: str) -> int:
    entries = [e for e in history if e["stage"] == stage]
    return min(entries, key=lambda e: e["val_rmse"])["stage_epoch"] if entries else 0


def _train_mf(train: dict, val: dict, vocab: Vocabularies, hparams: HParams, history: list,
              callbacks) -> tuple[MatrixFactorizationModel, float]:
    model = MatrixFactorizationModel(vocab, hparams, float(np.mean(train[fk.RATING])))
    # Callbacks see the MF model (e.g. TensorBoard needs one); the epochs of both stages.
    callbacks.set_model(model)
    callbacks.on_train_begin()
    dataset, steps = _shuffled_batches(train, hparams.batch_size, hparams.seed, hparams.epochs)
    optimizer = _optimizer(hparams.learning_rate, hparams.lr_decay, steps)
    val_tensors = {key: tf.constant(value) for key, value in val.items()}

    @tf.function(autograph=False)
    def evaluate():
        prediction, penalty = model.factorization(val_tensors[_USER_INDEX],
                                                  val_tensors[_MOVIE_INDEX])
        loss = model.task(labels=val_tensors[fk.RATING], predictions=prediction,
                          compute_metrics=False)
        return _clip(prediction), loss + tf.reduce_mean(penalty)

    def validate() -> dict:
        prediction, loss = evaluate()
        return {"val_loss": float(loss.numpy()),
                **_error_metrics(prediction.numpy(), val[fk.RATING])}

    seconds = _fit_stage("mf", model, dataset, steps, hparams.epochs, optimizer, validate,
                         hparams, history, callbacks)
    later = seconds[1:] or seconds
    return model, steps * min(hparams.batch_size, len(train[fk.RATING])) / float(np.median(later))


def _train_autorec(train: dict, val: dict, vocab: Vocabularies, hparams: HParams,
                   history: list, callbacks) -> AutoRecModel:
    matrix = _RatingMatrix(train[_MOVIE_INDEX], train[_USER_INDEX], train[fk.RATING],
                           vocab.n_movies, vocab.n_users)
    model = AutoRecModel(vocab, hparams, matrix)
    movies = np.arange(1, vocab.n_movies + 1, dtype=np.int64)
    dataset, steps = _shuffled_batches({_MOVIES: movies}, hparams.autorec_batch_size,
                                       hparams.seed + 1, hparams.autorec_epochs)
    optimizer = _optimizer(hparams.autorec_learning_rate, hparams.autorec_lr_decay, steps)
    sparse = matrix.sparse()
    known = (val[_USER_INDEX] > 0) & (val[_MOVIE_INDEX] > 0)
    users = tf.constant(val[_USER_INDEX][known])
    movies_val = tf.constant(val[_MOVIE_INDEX][known])
    labels = val[fk.RATING][known]

    @tf.function(autograph=False)
    def evaluate():
        model.autorec.freeze_codes(sparse)
        prediction = model.autorec(users, movies_val)
        loss = (tf.reduce_mean(tf.square(prediction - labels))
                + model.weight_decay * model.autorec.penalty())
        return _clip(prediction), loss

    def validate() -> dict:
        prediction, loss = evaluate()
        return {"val_loss": float(loss.numpy()), **_error_metrics(prediction.numpy(), labels)}

    _fit_stage("autorec", model, dataset, steps, hparams.autorec_epochs, optimizer, validate,
               hparams, history, callbacks)
    model.autorec.freeze_codes(sparse)  # from the restored best weights
    return model


def _fit_blend(model: RatingModel, val: dict, calibrate: bool) -> tuple:
    """Least-squares blend weights, then the calibration, on the known pairs of ``val``."""
    index = {key: tf.constant(val[key]) for key in (_USER_INDEX, _MOVIE_INDEX)}
    known = (val[_USER_INDEX] > 0) & (val[_MOVIE_INDEX] > 0)
    parts = model.components(index).numpy()[known].astype(np.float64)
    labels = val[fk.RATING][known].astype(np.float64)
    if model.autorec is not None:
        design = np.column_stack([np.ones(len(parts)), parts])
        weights = np.linalg.lstsq(design, labels, rcond=None)[0]
    else:
        weights = np.array([0.0, 1.0, 0.0])
    model.blend_weights.assign(weights.astype(np.float32))
    if calibrate:
        score = weights[0] + parts @ weights[1:]
        design = np.column_stack([np.ones(len(score)), score,
                                  np.maximum(score[:, None] - np.asarray(CALIBRATION_KNOTS), 0)])
        ridge = np.diag([0.0, 0.0] + [_CALIBRATION_RIDGE] * len(CALIBRATION_KNOTS))
        coef = np.linalg.solve(design.T @ design + ridge, design.T @ labels)
        model.calibration.assign(coef.astype(np.float32))
    return tuple(float(w) for w in weights)


def train_model(train: Data, validation: Data, hparams: HParams = HParams(),
                callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> TrainResult:
    """Train the MF, then the AutoRec (if ``hparams.blend``), then fit the blend on validation.

    ``validation`` is carved from the training split by the caller (`split_validation`); it
    drives early stopping (best weights restored) and the blend weights. ``callbacks`` (Keras
    callbacks) get on_train_begin/end and, for every epoch of every stage (numbered on from one
    stage to the next), on_epoch_begin/end with logs loss, val_loss, val_rmse, val_mae.
    """
    start = time.perf_counter()
    timings = {}

    def lap(name: str) -> None:
        timings[name] = time.perf_counter() - start - sum(timings.values())

    tf.keras.utils.set_random_seed(hparams.seed)
    callbacks = tf.keras.callbacks.CallbackList(list(callbacks))
    vocab = build_vocabularies(train, hparams.use_side_features)
    train_index, val_index = _indexed(train, vocab), _indexed(validation, vocab)
    lap("vocabularies")
    history: list = []
    mf, throughput = _train_mf(train_index, val_index, vocab, hparams, history, callbacks)
    lap("mf")
    autorec = (_train_autorec(train_index, val_index, vocab, hparams, history, callbacks)
               if hparams.blend else None)
    lap("autorec")
    # Everything the user rated in the train split (validation part included) is not a
    # candidate for recommendation.
    rated_users = np.concatenate([train_index[_USER_INDEX], val_index[_USER_INDEX]])
    rated_movies = np.concatenate([train_index[_MOVIE_INDEX], val_index[_MOVIE_INDEX]])
    seen = (rated_users > 0) & (rated_movies > 0)
    rated = RatedMovies(rated_users[seen], rated_movies[seen], vocab.n_users, name="rated")
    cold_start = cold_start_scores(
        rated_movies[seen], np.concatenate([train_index[fk.RATING], val_index[fk.RATING]])[seen],
        vocab.n_movies)
    model = RatingModel(vocab, mf, autorec, rated, cold_start)
    weights = _fit_blend(model, val_index, hparams.calibrate)
    model.compile()
    callbacks.on_train_end()
    val_metrics = _error_metrics(predict(model, validation), validation[fk.RATING])
    lap("blend")
    logging.info("trained in %.1f s (%s); validation RMSE %.4f, MAE %.4f",
                 time.perf_counter() - start,
                 ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
                 val_metrics["val_rmse"], val_metrics["val_mae"])
    return TrainResult(
        model=model, history=history, best_epoch=_best_epoch(history, "mf"),
        autorec_best_epoch=_best_epoch(history, "autorec"), blend_weights=weights,
        val_rmse=val_metrics["val_rmse"], val_mae=val_metrics["val_mae"],
        train_seconds=time.perf_counter() - start, mf_examples_per_second=throughput,
        vocabularies=vocab, timings=timings)


# --- prediction and export ----------------------------------------------------------------------

def _predict_fn(model: RatingModel):
    fn = getattr(model, "_kiko_predict_fn", None)
    if fn is None:
        fn = tf.function(lambda users, movies: model({fk.USER_ID: users, fk.MOVIE_ID: movies}),
                         input_signature=[tf.TensorSpec([None], tf.int64)] * 2, autograph=False)
        model._kiko_predict_fn = fn
    return fn


def predict(model: RatingModel, features: Data) -> np.ndarray:
    """Ratings (float32, clipped to [1, 5]) for the user/movie id pairs in ``features``."""
    users = np.asarray(features[fk.USER_ID], dtype=np.int64)
    movies = np.asarray(features[fk.MOVIE_ID], dtype=np.int64)
    fn = _predict_fn(model)
    out = [fn(tf.constant(users[i:i + _PREDICT_BATCH]), tf.constant(movies[i:i + _PREDICT_BATCH]))
           .numpy() for i in range(0, len(users), _PREDICT_BATCH)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


class _ServingModule(tf.Module):
    """What is exported: the model and its two signatures."""

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
