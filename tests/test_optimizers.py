"""LazyAdam: row-sparse Adam updates of large embedding tables."""

import numpy as np
import tensorflow as tf

from kiko.model.optimizers import LazyAdam


def test_lazy_adam_updates_only_the_rows_of_the_batch():
    table = tf.Variable(np.ones((4, 2), np.float32))
    optimizer = LazyAdam(0.1)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(table, [1, 1, 3]) ** 2)
        optimizer.apply_gradients([(tape.gradient(loss, table), table)])
    values = table.numpy()
    np.testing.assert_array_equal(values[[0, 2]], 1.0)  # untouched rows, moments included
    assert np.all(values[[1, 3]] < 1.0)
    reference = tf.Variable(np.ones((4, 2), np.float32))
    dense = tf.keras.optimizers.legacy.Adam(0.1)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(reference, [1, 1, 3]) ** 2)
        dense.apply_gradients([(tf.convert_to_tensor(tape.gradient(loss, reference)),
                                reference)])
    # Rows that get a gradient every step follow Adam exactly.
    np.testing.assert_allclose(values[[1, 3]], reference.numpy()[[1, 3]], rtol=1e-6)
