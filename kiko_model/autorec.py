"""The AutoRec members: item-based (I-AutoRec) and user-based (U-AutoRec).

AutoRec reconstructs each row of the sparse rating matrix (a movie's ratings by all users for
I-AutoRec, a user's ratings of all movies for U-AutoRec). Training runs on batches of rows with
a per-entry L2 penalty, so an epoch costs O(ratings x units) (see `RatingRows`); after
training every row's code is frozen into the layer, so serving needs no rating matrix.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kiko.model.datasets import training_data_options
from kiko.model.layers import AutoRec
from kiko.model.member import Member
from kiko.model.vocabulary import Vocabularies

ROWS = "rows"  # the key of a training batch: row indices
# Least observed share of the rating matrix for dense AutoRec steps (see `RatingRows`).
DENSE_MIN_DENSITY = 0.01


class RatingRows:
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
        are drawn up front (epochs x rows int32s) and sliced by tf.data, so no Python
        generator runs (and holds the GIL) during training.
        """
        rows = np.flatnonzero(self.counts).astype(np.int32)
        total = int(self.counts.sum())
        steps = max(-(-len(rows) // max_rows), -(-total // max_ratings), 1)
        cuts = np.linspace(0, len(rows), steps + 1).round().astype(np.int64)
        orders = np.concatenate([np.random.default_rng([seed, epoch]).permutation(rows)
                                 for epoch in range(epochs)])
        batches = tf.RaggedTensor.from_row_lengths(orders, np.tile(np.diff(cuts), epochs))
        dataset = tf.data.Dataset.from_tensor_slices(batches).map(lambda batch: {ROWS: batch})
        return dataset.prefetch(2).with_options(training_data_options()), steps


class AutoRecModel(Member):
    """AutoRec trained on batches of rows: masked MSE over their observed training ratings
    plus per-entry L2; item-based (rows = movies) or user-based (rows = users)."""

    def __init__(self, name: str, vocab: Vocabularies, item_based: bool, units: int,
                 l2: float, seed: int, matrix: RatingRows):
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

    def fit_callbacks(self) -> list:
        return [_FreezeCodes(self)]

    def compute_loss(self, batch, training=False):
        if not training:
            return self.validation_loss(batch)
        rows = batch[ROWS]
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
