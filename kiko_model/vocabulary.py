"""Vocabularies from the training data: ids seen, side-feature tables, dense indices.

Every model part works on dense indices: raw id -> 1..n in sorted id order, 0 for an id not
seen in training (the out-of-vocabulary bucket). The training data are indexed in NumPy
(`Vocabularies.user_index`); the served model maps ids the same way in the graph (`id_lookup`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from kiko.model import data
from kiko.model import features as fk

# Keys of the dense index columns of a batch or of an indexed part of the data.
USER_INDEX = "user_index"
MOVIE_INDEX = "movie_index"


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


def id_lookup(vocabulary: np.ndarray, name: str) -> tf.keras.layers.IntegerLookup:
    """A layer that maps raw ids as `_index` does: 1..n in ``vocabulary`` order, unknown -> 0."""
    return tf.keras.layers.IntegerLookup(vocabulary=np.asarray(vocabulary, np.int64),
                                         num_oov_indices=1, name=name)


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


def indexed(examples: data.Examples, vocab: Vocabularies) -> dict:
    """The ratings of ``examples`` as columns {USER_INDEX, MOVIE_INDEX, rating}."""
    columns = examples.columns
    return {USER_INDEX: vocab.user_index(columns[fk.USER_ID]),
            MOVIE_INDEX: vocab.movie_index(columns[fk.MOVIE_ID]),
            fk.RATING: np.asarray(columns[fk.RATING], dtype=np.float32)}
