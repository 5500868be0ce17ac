"""Small Keras layers of the rating model: side features, factorisation, AutoRec, rated movies.

Every layer works on dense indices where 0 is the out-of-vocabulary (OOV) bucket. OOV rows are
masked to zero, so an unknown user or movie contributes nothing but the biases that are known.
Training touches only the table rows of the batch (gathers, whose gradients are sparse), so a
step costs O(batch), never O(table): that is what keeps an epoch linear in the ratings.
"""

from __future__ import annotations

from typing import Mapping, Optional, Tuple

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


def _constant(values: np.ndarray, name: str) -> tf.Variable:
    """A non-trainable variable: saved in the checkpoint, not in the graph."""
    return tf.Variable(values, trainable=False, name=name)


class SideFeatures(tf.keras.layers.Layer):
    """Side features of an entity (user or movie), looked up by its index.

    ``features`` maps a name to (row_splits [n_entities + 2], codes, vocabulary size): entity
    index i has the category codes codes[row_splits[i]:row_splits[i + 1]] (index 0, the OOV
    entity, none). Any feature (int or bytes, one value or several) is handled alike: it
    contributes the mean of the vectors and biases of the entity's values. All features share
    one table (each feature's codes offset into it), and each entity's values are padded to
    the longest (weight 0), so a batch costs one dense gather whatever the features. The owner
    L2-regularises the values an example uses (unregularised side vectors overfit).
    """

    def __init__(self, features: Mapping[str, Tuple[np.ndarray, np.ndarray, int]], dim: int,
                 seed: int, **kwargs):
        super().__init__(**kwargs)
        self.names = sorted(features)
        self.sizes = {name: int(features[name][2]) for name in self.names}
        n_entities = len(features[self.names[0]][0]) - 1
        codes, weights, owners, offset = [], [], [], 0
        for name in self.names:
            splits, feature_codes, size = features[name]
            lengths = np.diff(splits)
            owners.append(np.repeat(np.arange(n_entities), lengths))
            codes.append(feature_codes.astype(np.int64) + offset)
            weights.append(np.repeat(1.0 / np.maximum(lengths, 1), lengths))
            offset += size
        owner = np.concatenate(owners)
        order = np.argsort(owner, kind="stable")
        owner = owner[order]
        counts = np.bincount(owner, minlength=n_entities)
        slot = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        width = max(int(counts.max(initial=0)), 1)
        padded_codes = np.zeros((n_entities, width), np.int32)
        padded_weights = np.zeros((n_entities, width), np.float32)
        padded_codes[owner, slot] = np.concatenate(codes)[order]
        padded_weights[owner, slot] = np.concatenate(weights)[order]
        self.codes = _constant(padded_codes, "codes")  # [n_entities, width]
        self.value_weights = _constant(padded_weights, "value_weights")
        self.vectors = self.add_weight(
            name="vectors", shape=(offset, dim),
            initializer=tf.keras.initializers.RandomNormal(stddev=0.01, seed=seed))
        self.biases = self.add_weight(name="biases", shape=(offset,), initializer="zeros")

    def call(self, index: tf.Tensor):
        """(vector [..., dim], bias [...], L2 penalty [...]) of the side features of ``index``:
        the penalty is the weighted sum of the squared vectors and biases of the values used."""
        index = tf.cast(index, tf.int64)
        codes = tf.gather(self.codes, index)
        weights = tf.gather(self.value_weights, index)
        vectors, biases = tf.gather(self.vectors, codes), tf.gather(self.biases, codes)
        norms = tf.reduce_sum(tf.square(vectors), axis=-1) + tf.square(biases)
        return (tf.reduce_sum(vectors * weights[..., tf.newaxis], axis=-2),
                tf.reduce_sum(biases * weights, axis=-1),
                tf.reduce_sum(norms * weights, axis=-1))


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

    def _entity(self, factors, bias, side, index):
        """(vector, bias, per-example L2 penalty) of users or movies at ``index``, side
        features added."""
        vector, b = _masked_gather(factors, index), _masked_gather(bias, index)
        penalty = self.l2_factors * tf.reduce_sum(tf.square(vector), -1) + self.l2_biases * b * b
        if side is not None:
            s, sb, norm = side(index)
            vector, b, penalty = vector + s, b + sb, penalty + self.l2_side * norm
        return vector, b, penalty

    def _user(self, user_index):
        return self._entity(self.user_factors, self.user_bias, self.user_side, user_index)

    def _movie(self, movie_index):
        return self._entity(self.movie_factors, self.movie_bias, self.movie_side, movie_index)

    def call(self, user_index: tf.Tensor, movie_index: tf.Tensor):
        """(prediction [B], per-example L2 penalty [B])."""
        p, bu, user_penalty = self._user(user_index)
        q, bm, movie_penalty = self._movie(movie_index)
        prediction = self.global_mean + bu + bm + tf.reduce_sum(p * q, axis=-1)
        return prediction, user_penalty + movie_penalty

    def score_all(self, user_index: tf.Tensor) -> tf.Tensor:
        """Predictions [U, n_movies + 1] of users ``user_index`` [U] for every movie index."""
        p, bu, _ = self._user(user_index)
        q, bm, _ = self._movie(tf.range(tf.shape(self.movie_factors, out_type=tf.int64)[0]))
        return (self.global_mean + bu[:, tf.newaxis] + bm[tf.newaxis, :]
                + tf.matmul(p, q, transpose_b=True))


class AutoRec(tf.keras.layers.Layer):
    """AutoRec (Sedhain et al. 2015): a row's sparse vector of training ratings -> all its ratings.

    Rows are movies and columns users for I-AutoRec (each movie's column of the rating
    matrix), the other way round for U-AutoRec. code_r = sigmoid(sum_c r_rc W_c + b) over the
    row's observed ratings; rating(r, c) = <code_r, V_c> + d_c. The L2 penalty is per entry,
    on the W_c and V_c rows it touches, so regularisation scales with the data like the
    factorisation's. Training reconstructs the observed entries of batches of rows
    (`reconstruct`); after training the owner stores every row's code (`codes`), so serving
    needs no rating matrix.
    """

    def __init__(self, n_rows: int, n_columns: int, units: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.n_rows, self.n_columns = n_rows, n_columns
        self.encoder = self.add_weight(
            name="encoder", shape=(n_columns + 1, units),
            initializer=tf.keras.initializers.GlorotUniform(seed=seed))
        self.encoder_bias = self.add_weight(name="encoder_bias", shape=(units,),
                                            initializer="zeros")
        self.decoder = self.add_weight(
            name="decoder", shape=(n_columns + 1, units),
            initializer=tf.keras.initializers.GlorotUniform(seed=seed + 1))
        self.decoder_bias = self.add_weight(name="decoder_bias", shape=(n_columns + 1,),
                                            initializer="zeros")
        self.codes = self.add_weight(name="codes", shape=(n_rows + 1, units),
                                     initializer="zeros", trainable=False)

    def encode_sparse(self, ratings: tf.SparseTensor) -> tf.Tensor:
        """Codes [R, units] of R rows' sparse rating vectors [R, n_columns + 1]."""
        return tf.sigmoid(tf.sparse.sparse_dense_matmul(ratings, self.encoder)
                          + self.encoder_bias)

    def decode(self, codes: tf.Tensor, columns: tf.Tensor) -> tf.Tensor:
        """Ratings of columns ``columns`` [N] for the rows whose codes are ``codes`` [N, units]."""
        columns = tf.cast(columns, tf.int64)
        return (tf.reduce_sum(codes * tf.gather(self.decoder, columns), axis=-1)
                + tf.gather(self.decoder_bias, columns))

    def reconstruct(self, row_of_entry: tf.Tensor, columns: tf.Tensor, ratings: tf.Tensor,
                    n_rows: tf.Tensor, dense: bool) -> tuple:
        """(predictions [N], summed L2 penalty) of N observed entries of a batch of n_rows rows:
        entry i is (row position row_of_entry[i], column columns[i], rating ratings[i]).

        Sparse: only the encoder and decoder rows of the batch's columns are gathered (once
        per distinct column: their gradients are already deduplicated rows) and the codes are
        a sparse matmul, so no step allocates more than entries x units. Dense: matmuls over
        every column, O(rows x columns x units) but much faster per value while the matrix is
        dense enough. Both compute the same function.
        """
        if dense:
            entries = tf.stack([row_of_entry, tf.cast(columns, tf.int64)], axis=1)
            codes = self.encode_sparse(tf.SparseTensor(entries, ratings,
                                                       [n_rows, self.n_columns + 1]))
            full = tf.matmul(codes, self.decoder, transpose_b=True) + self.decoder_bias
            counts = tf.math.bincount(columns, minlength=self.n_columns + 1, dtype=tf.float32)
            penalty = tf.reduce_sum(counts * (tf.reduce_sum(tf.square(self.encoder), axis=-1)
                                              + tf.reduce_sum(tf.square(self.decoder), axis=-1)))
            return tf.gather_nd(full, entries), penalty
        distinct, position = tf.unique(columns)
        n_distinct = tf.shape(distinct, out_type=tf.int64)[0]
        counts = tf.math.unsorted_segment_sum(tf.ones_like(ratings), position, n_distinct)
        encoder, decoder = tf.gather(self.encoder, distinct), tf.gather(self.decoder, distinct)
        sparse = tf.SparseTensor(tf.stack([row_of_entry, tf.cast(position, tf.int64)], axis=1),
                                 ratings, tf.stack([n_rows, n_distinct]))
        codes = tf.sigmoid(tf.sparse.sparse_dense_matmul(sparse, encoder) + self.encoder_bias)
        predictions = (tf.reduce_sum(tf.gather(codes, row_of_entry)
                                     * tf.gather(decoder, position), axis=-1)
                       + tf.gather(self.decoder_bias, columns))
        penalty = tf.reduce_sum(counts * (tf.reduce_sum(tf.square(encoder), axis=-1)
                                          + tf.reduce_sum(tf.square(decoder), axis=-1)))
        return predictions, penalty

    def call(self, row_index: tf.Tensor, column_index: tf.Tensor) -> tf.Tensor:
        """Ratings from the frozen codes (valid for known rows and columns only)."""
        return self.decode(tf.gather(self.codes, tf.cast(row_index, tf.int64)), column_index)

    def score_rows(self, row_index: tf.Tensor) -> tf.Tensor:
        """Ratings [R, n_columns + 1] of rows ``row_index`` for every column (frozen codes)."""
        codes = tf.gather(self.codes, tf.cast(row_index, tf.int64))
        return tf.matmul(codes, self.decoder, transpose_b=True) + self.decoder_bias

    def score_columns(self, column_index: tf.Tensor) -> tf.Tensor:
        """Ratings [C, n_rows + 1] of every row for columns ``column_index`` (frozen codes)."""
        column_index = tf.cast(column_index, tf.int64)
        return (tf.matmul(tf.gather(self.decoder, column_index), self.codes, transpose_b=True)
                + tf.gather(self.decoder_bias, column_index)[:, tf.newaxis])


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
        self.row_splits = _constant(splits.astype(np.int64), "row_splits")
        self.movies = _constant(movies.astype(np.int32), "movies")

    def call(self, user_index: tf.Tensor, scores: tf.Tensor, fill: float) -> tf.Tensor:
        """``scores`` [U, n_movies + 1] with ``fill`` where user ``user_index[i]`` rated movie j."""
        rated = tf.RaggedTensor.from_row_splits(self.movies.read_value(),
                                                self.row_splits.read_value(), validate=False)
        rows = tf.gather(rated, tf.cast(user_index, tf.int64))
        positions = tf.stack([rows.value_rowids(), tf.cast(rows.values, tf.int64)], axis=1)
        return tf.tensor_scatter_nd_update(
            scores, positions, tf.fill(tf.shape(rows.values), tf.cast(fill, scores.dtype)))
