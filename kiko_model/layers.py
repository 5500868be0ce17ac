"""Small Keras layers of the rating model: id lookup, biased factorisation, item AutoRec.

Every layer works on dense indices where 0 is the out-of-vocabulary (OOV) bucket. OOV rows are
masked to zero, so an unknown user or movie contributes nothing but the biases that are known.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf


def _masked_gather(table: tf.Variable, index: tf.Tensor) -> tf.Tensor:
    """Rows of ``table`` at ``index``, zero where ``index`` is 0 (OOV) or out of range."""
    index = tf.convert_to_tensor(index)
    n_rows = tf.shape(table, out_type=index.dtype)[0]
    known = tf.logical_and(index > 0, index < n_rows)
    rows = tf.gather(table, tf.where(known, index, tf.zeros_like(index)))
    mask = tf.cast(known, rows.dtype)
    if rows.shape.rank > index.shape.rank:
        mask = mask[..., tf.newaxis]
    return rows * mask


class IdIndex(tf.keras.layers.Layer):
    """Raw int64 ids -> dense indices 1..n in vocabulary order; unknown ids -> 0 (OOV)."""

    def __init__(self, vocabulary: Sequence[int], **kwargs):
        super().__init__(trainable=False, **kwargs)
        keys = tf.constant(np.asarray(vocabulary, dtype=np.int64))
        values = tf.range(1, len(vocabulary) + 1, dtype=tf.int64)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=0)
        self.vocabulary_size = len(vocabulary)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        return self.table.lookup(tf.cast(ids, tf.int64))


class SideFeatures(tf.keras.layers.Layer):
    """Side features of an entity (user or movie) looked up by its index from training tables.

    ``categorical`` maps a name to an int array [n_entities + 1] of category indices (0 =
    unknown) and ``multi_hot`` (optional) is a float array [n_entities + 1, n_values] whose rows
    are averaged over the values (genres). Each category has a vector and a bias; both are
    L2-regularised per example by the owner, because unregularised side vectors overfit.
    """

    def __init__(self, categorical: dict, multi_hot: Optional[np.ndarray], dim: int,
                 seed: int, **kwargs):
        super().__init__(**kwargs)
        self.names = sorted(categorical)
        self.index_tables = {name: tf.constant(categorical[name].astype(np.int64))
                             for name in self.names}
        init = tf.keras.initializers.RandomNormal(stddev=0.01, seed=seed)
        self.vectors, self.biases = {}, {}
        for name in self.names:
            size = int(categorical[name].max()) + 1
            self.vectors[name] = self.add_weight(name=f"{name}_vector", shape=(size, dim),
                                                 initializer=init)
            self.biases[name] = self.add_weight(name=f"{name}_bias", shape=(size,),
                                                initializer="zeros")
        self.multi_hot = None
        if multi_hot is not None:
            rows = multi_hot.astype(np.float32)
            counts = np.maximum(rows.sum(axis=1, keepdims=True), 1.0)
            self.multi_hot = tf.constant(rows / counts)
            self.multi_vector = self.add_weight(name="multi_vector",
                                                shape=(rows.shape[1], dim), initializer=init)
            self.multi_bias = self.add_weight(name="multi_bias", shape=(rows.shape[1],),
                                              initializer="zeros")

    def all_entities(self):
        """(vector [n + 1, dim], bias [n + 1], squared norm [n + 1]) of every entity.

        Computed for all entities at once (a few thousand rows), then gathered per example: one
        gather per batch instead of one per side feature.
        """
        vector, bias, norm = 0.0, 0.0, 0.0
        for name in self.names:
            category = self.index_tables[name]
            v = _masked_gather(self.vectors[name], category)
            b = _masked_gather(self.biases[name], category)
            vector, bias = vector + v, bias + b
            norm = norm + tf.reduce_sum(tf.square(v), axis=-1) + tf.square(b)
        if self.multi_hot is not None:
            v = tf.matmul(self.multi_hot, self.multi_vector)
            b = tf.linalg.matvec(self.multi_hot, self.multi_bias)
            vector, bias = vector + v, bias + b
            norm = norm + tf.reduce_sum(tf.square(v), axis=-1) + tf.square(b)
        return vector, bias, norm

    def call(self, index: tf.Tensor):
        """(vector [B, dim], bias [B], squared norm [B]) of the side features of ``index``."""
        index = tf.cast(index, tf.int64)
        return tuple(tf.gather(table, index) for table in self.all_entities())


class BiasedFactorization(tf.keras.layers.Layer):
    """mu + b_u + b_m + <p_u + s_u, q_m + s_m> (+ side biases), with per-example L2 penalties.

    ``s_u``/``s_m`` are the side-feature vectors of the user/movie (none when the data has no
    side features). Returns the prediction and the per-example penalty so that the owning model
    adds ``mean(penalty)`` to its loss, as SVD-style regularisation does.
    """

    def __init__(self, n_users: int, n_movies: int, dim: int, global_mean: float,
                 l2_factors: float, l2_biases: float, l2_side: float, seed: int,
                 user_side: Optional[SideFeatures] = None,
                 movie_side: Optional[SideFeatures] = None, **kwargs):
        super().__init__(**kwargs)
        init = tf.keras.initializers.RandomNormal(stddev=0.01, seed=seed)
        self.user_factors = self.add_weight(name="user_factors", shape=(n_users + 1, dim),
                                            initializer=init)
        movie_init = tf.keras.initializers.RandomNormal(stddev=0.01, seed=seed + 1)
        self.movie_factors = self.add_weight(name="movie_factors", shape=(n_movies + 1, dim),
                                             initializer=movie_init)
        self.user_bias = self.add_weight(name="user_bias", shape=(n_users + 1,),
                                         initializer="zeros")
        self.movie_bias = self.add_weight(name="movie_bias", shape=(n_movies + 1,),
                                          initializer="zeros")
        self.global_mean = self.add_weight(
            name="global_mean", shape=(), initializer=tf.keras.initializers.Constant(global_mean))
        self.user_side, self.movie_side = user_side, movie_side
        self.l2_factors, self.l2_biases, self.l2_side = l2_factors, l2_biases, l2_side

    def call(self, user_index: tf.Tensor, movie_index: tf.Tensor):
        """(prediction [B], per-example L2 penalty [B])."""
        p = _masked_gather(self.user_factors, user_index)
        q = _masked_gather(self.movie_factors, movie_index)
        bu = _masked_gather(self.user_bias, user_index)
        bm = _masked_gather(self.movie_bias, movie_index)
        penalty = (self.l2_factors * (tf.reduce_sum(tf.square(p), -1)
                                      + tf.reduce_sum(tf.square(q), -1))
                   + self.l2_biases * (tf.square(bu) + tf.square(bm)))
        bias = self.global_mean + bu + bm
        if self.user_side is not None:
            s, b, norm = self.user_side(user_index)
            p, bias, penalty = p + s, bias + b, penalty + self.l2_side * norm
        if self.movie_side is not None:
            s, b, norm = self.movie_side(movie_index)
            q, bias, penalty = q + s, bias + b, penalty + self.l2_side * norm
        return bias + tf.reduce_sum(p * q, axis=-1), penalty

    def score_all(self, user_index: tf.Tensor) -> tf.Tensor:
        """Predictions [U, n_movies + 1] of users ``user_index`` [U] for every movie index."""
        p = _masked_gather(self.user_factors, user_index)
        bu = _masked_gather(self.user_bias, user_index)
        every_movie = tf.range(tf.shape(self.movie_factors, out_type=tf.int64)[0])
        q = _masked_gather(self.movie_factors, every_movie)
        bm = _masked_gather(self.movie_bias, every_movie)
        if self.user_side is not None:
            s, b, _ = self.user_side(user_index)
            p, bu = p + s, bu + b
        if self.movie_side is not None:
            s, b, _ = self.movie_side(every_movie)
            q, bm = q + s, bm + b
        return (self.global_mean + bu[:, tf.newaxis] + bm[tf.newaxis, :]
                + tf.matmul(p, q, transpose_b=True))


class ItemAutoRec(tf.keras.layers.Layer):
    """I-AutoRec (Sedhain et al. 2015): a movie's column of training ratings -> all users' ratings.

    code_m = sigmoid(r_m W + b) with r_m the sparse vector of the movie's training ratings over
    users; rating(u, m) = <code_m, V_u> + c_u. Only observed entries are decoded (gathers, not a
    dense [movies, users] product), which keeps an epoch at ML-1M size to ~1 GFLOP. After
    training, `freeze_codes` stores every movie's code so that serving needs no rating matrix.
    """

    def __init__(self, n_users: int, n_movies: int, units: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        limit = tf.keras.initializers.GlorotUniform(seed=seed)
        self.n_users, self.n_movies = n_users, n_movies
        self.encoder = self.add_weight(name="encoder", shape=(n_users + 1, units),
                                       initializer=limit)
        self.encoder_bias = self.add_weight(name="encoder_bias", shape=(units,),
                                            initializer="zeros")
        self.decoder = self.add_weight(
            name="decoder", shape=(n_users + 1, units),
            initializer=tf.keras.initializers.GlorotUniform(seed=seed + 1))
        self.decoder_bias = self.add_weight(name="decoder_bias", shape=(n_users + 1,),
                                            initializer="zeros")
        self.codes = self.add_weight(name="movie_codes", shape=(n_movies + 1, units),
                                     initializer="zeros", trainable=False)

    def encode(self, ratings: tf.SparseTensor) -> tf.Tensor:
        """Codes [B, units] of B movies' sparse rating vectors [B, n_users + 1]."""
        return tf.sigmoid(tf.sparse.sparse_dense_matmul(ratings, self.encoder)
                          + self.encoder_bias)

    def decode(self, codes: tf.Tensor, user_index: tf.Tensor) -> tf.Tensor:
        """Ratings of users ``user_index`` [N] for the movies with ``codes`` [N, units]."""
        user_index = tf.cast(user_index, tf.int64)
        return (tf.reduce_sum(codes * tf.gather(self.decoder, user_index), axis=-1)
                + tf.gather(self.decoder_bias, user_index))

    def decode_all(self, codes: tf.Tensor) -> tf.Tensor:
        """Ratings [B, n_users + 1] of every user for the movies whose codes are ``codes``."""
        return tf.matmul(codes, self.decoder, transpose_b=True) + self.decoder_bias

    def penalty(self) -> tf.Tensor:
        return tf.reduce_sum(tf.square(self.encoder)) + tf.reduce_sum(tf.square(self.decoder))

    def freeze_codes(self, ratings: tf.SparseTensor) -> None:
        """Store the codes of all movies from the training matrix [n_movies + 1, n_users + 1]."""
        self.codes.assign(self.encode(ratings))

    def call(self, user_index: tf.Tensor, movie_index: tf.Tensor) -> tf.Tensor:
        """Ratings from the frozen codes (valid for known users and movies only)."""
        codes = tf.gather(self.codes, tf.cast(movie_index, tf.int64))
        return self.decode(codes, user_index)

    def score_all(self, user_index: tf.Tensor) -> tf.Tensor:
        """Ratings [U, n_movies + 1] of users ``user_index`` for every movie (frozen codes)."""
        user_index = tf.cast(user_index, tf.int64)
        return (tf.matmul(tf.gather(self.decoder, user_index), self.codes, transpose_b=True)
                + tf.gather(self.decoder_bias, user_index)[:, tf.newaxis])


class RatedMovies(tf.keras.layers.Layer):
    """Which movies each user rated in training, as ragged rows of int32 movie indices.

    Stored as two variables (row splits over user indices 0..n_users, movie indices), so the
    SavedModel holds O(ratings) int32s in its checkpoint, never a dense users x movies matrix.
    """

    def __init__(self, user_index: np.ndarray, movie_index: np.ndarray, n_users: int,
                 **kwargs):
        super().__init__(trainable=False, **kwargs)
        user_index = np.asarray(user_index, dtype=np.int64)
        movie_index = np.asarray(movie_index, dtype=np.int64)
        width = int(movie_index.max(initial=0)) + 1
        pairs = np.unique(user_index * width + movie_index)  # sorted by user, then movie
        users, movies = pairs // width, pairs % width
        splits = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users + 1))])
        self.row_splits = tf.Variable(splits.astype(np.int64), trainable=False,
                                      name="row_splits")
        self.movies = tf.Variable(movies.astype(np.int32), trainable=False, name="movies")

    def call(self, user_index: tf.Tensor, scores: tf.Tensor, fill: float) -> tf.Tensor:
        """``scores`` [U, n_movies + 1] with ``fill`` where user ``user_index[i]`` rated movie j."""
        rated = tf.RaggedTensor.from_row_splits(self.movies.read_value(),
                                                self.row_splits.read_value(), validate=False)
        rows = tf.gather(rated, tf.cast(user_index, tf.int64))
        positions = tf.stack([rows.value_rowids(), tf.cast(rows.values, tf.int64)], axis=1)
        return tf.tensor_scatter_nd_update(
            scores, positions, tf.fill(tf.shape(rows.values), tf.cast(fill, scores.dtype)))
