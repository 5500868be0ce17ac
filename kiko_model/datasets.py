"""The members' tf.data pipelines over in-memory arrays: shuffled training batches, validation.

Batches are gathered from constants by index, so no Python generator runs (and holds the GIL)
during training.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from kiko.model.vocabulary import MOVIE_INDEX, USER_INDEX

_VALIDATION_BATCH = 65536


def training_data_options() -> tf.data.Options:
    """tf.data options of the members' training datasets: fixed parallelism, no autotuning.

    Early stopping ends `fit` before its dataset is exhausted, and Python's garbage collector
    frees the abandoned iterator later, at any allocation. With tf.data's autotuning on, that
    freeing blocked the main thread for many seconds at a time; with it off, it does not. The
    pipelines are a gather per batch: two parallel calls and a prefetch of two batches keep
    the trainer busy.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def shuffled_batches(tensors: Mapping[str, np.ndarray], batch_size: int, seed: int,
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
               .prefetch(2).with_options(training_data_options()))
    return dataset, steps


def validation_batches(val: Mapping[str, np.ndarray]) -> tf.data.Dataset:
    """The known pairs of the validation part (indexed columns), in large batches."""
    known = (val[USER_INDEX] > 0) & (val[MOVIE_INDEX] > 0)
    return tf.data.Dataset.from_tensor_slices(
        {key: value[known] for key, value in val.items()}).batch(_VALIDATION_BATCH).cache()
