"""Vocabularies: dense indices of ids in NumPy (training) and in the graph (serving) agree."""

import numpy as np
import tensorflow as tf

from kiko.model import data
from kiko.model import features as fk
from kiko.model.vocabulary import (MOVIE_INDEX, USER_INDEX, build_vocabularies, id_lookup,
                                   indexed)


def _examples() -> data.Examples:
    return data.Examples({fk.USER_ID: np.array([42, 7, 42, 0, 9], np.int64),
                          fk.MOVIE_ID: np.array([3, 3, 1000, 5, 2**40], np.int64),
                          fk.RATING: np.array([4.0, 3.5, 1.0, 5.0, 2.0], np.float32),
                          fk.TIMESTAMP: np.zeros(5, np.int64)})


def test_ids_index_in_sorted_order_from_one_and_unknown_ids_are_zero():
    vocab = build_vocabularies(_examples(), use_side_features=False)
    assert vocab.user_ids.tolist() == [0, 7, 9, 42] and vocab.n_movies == 4
    assert vocab.rating_range == (1.0, 5.0)
    np.testing.assert_array_equal(vocab.user_index([42, 0, 8, -1, 9, 7]), [4, 1, 0, 0, 3, 2])
    index = indexed(_examples(), vocab)
    np.testing.assert_array_equal(index[USER_INDEX], [4, 2, 4, 1, 3])
    np.testing.assert_array_equal(index[MOVIE_INDEX], [1, 1, 3, 2, 4])
    assert index[fk.RATING].dtype == np.float32


def test_the_graph_lookup_maps_every_id_as_the_training_index_does():
    rng = np.random.default_rng(0)
    vocabulary = np.unique(rng.integers(0, 10**6, 5000))
    ids = np.concatenate([vocabulary, rng.integers(-5, 10**6, 5000),
                          [-1, 0, 2**62, np.iinfo(np.int64).max, np.iinfo(np.int64).min]])
    vocab = build_vocabularies(data.Examples({
        fk.USER_ID: vocabulary, fk.MOVIE_ID: vocabulary,
        fk.RATING: np.ones(len(vocabulary), np.float32),
        fk.TIMESTAMP: np.zeros(len(vocabulary), np.int64)}), use_side_features=False)
    expected = vocab.user_index(ids)
    assert expected[:len(vocabulary)].tolist() == list(range(1, len(vocabulary) + 1))
    assert (expected[len(vocabulary):] == 0).any()
    lookup = id_lookup(vocab.user_ids, name="user_lookup")
    mapped = lookup(tf.constant(ids, tf.int64))
    assert mapped.dtype == tf.int64
    np.testing.assert_array_equal(mapped.numpy(), expected)
    # The served model's lookups run inside tf.functions and take int32 ids too.
    traced = tf.function(lambda x: lookup(x), autograph=False)
    np.testing.assert_array_equal(traced(tf.constant(ids[:100], tf.int32)).numpy(),
                                  expected[:100])
