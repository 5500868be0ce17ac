"""Slice features for TFMA: how active a user and how popular a movie was in training.

They are not in the examples; the exported model computes them in a `transform_features`
signature (TFMA's preprocessing function) from rating counts taken at training time, so the
Evaluator can report metrics per user-activity and per movie-popularity bucket.
"""

from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from kiko.model import features as fk

USER_ACTIVITY = "user_activity"  # bucket of the user's number of training ratings
MOVIE_POPULARITY = "movie_popularity"  # bucket of the movie's number of training ratings
TRANSFORM_SIGNATURE = "transform_features"

USER_ACTIVITY_EDGES = (20, 50, 100, 200, 500)
MOVIE_POPULARITY_EDGES = (10, 50, 200, 1000)


def bucket_labels(edges: Sequence[int]) -> Tuple[str, ...]:
    """Labels for counts 0 (unseen in training), [1, e0), [e0, e1), ..., [e_last, inf)."""
    bounds = (1,) + tuple(edges)
    labels = ["0"] + [f"{lo}-{hi - 1}" for lo, hi in zip(bounds, bounds[1:])]
    return tuple(labels + [f"{bounds[-1]}+"])


def bucketize(counts: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Index into bucket_labels(edges) of each count."""
    return np.searchsorted(np.asarray((1,) + tuple(edges)), counts, side="right")


class _CountBuckets(tf.Module):
    """id -> bucket label, from the ids seen in training and their rating counts."""

    def __init__(self, ids: np.ndarray, edges: Sequence[int]):
        super().__init__()
        unique, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
        self.labels = tf.constant(bucket_labels(edges))
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(unique), tf.constant(bucketize(counts, edges), dtype=tf.int64)),
            default_value=0)

    def __call__(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.labels, self.table.lookup(ids))


class SliceFeatures(tf.Module):
    """The `transform_features` signature: serialized tf.Examples -> slice features."""

    def __init__(self, train_user_ids: np.ndarray, train_movie_ids: np.ndarray):
        super().__init__()
        self.users = _CountBuckets(train_user_ids, USER_ACTIVITY_EDGES)
        self.movies = _CountBuckets(train_movie_ids, MOVIE_POPULARITY_EDGES)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples):
        parsed = tf.io.parse_example(examples, {
            fk.USER_ID: tf.io.FixedLenFeature([], tf.int64, default_value=0),
            fk.MOVIE_ID: tf.io.FixedLenFeature([], tf.int64, default_value=0)})
        return {USER_ACTIVITY: self.users(parsed[fk.USER_ID]),
                MOVIE_POPULARITY: self.movies(parsed[fk.MOVIE_ID])}
