"""The AutoRec layer's two step kinds and the row batches its members train on."""

import numpy as np
import tensorflow as tf

from kiko.model.autorec import ROWS, RatingRows
from kiko.model.layers import AutoRec


def test_autorec_dense_and_sparse_steps_compute_the_same_loss_and_gradients():
    rng = np.random.default_rng(3)
    n_rows, n_columns, n = 5, 7, 14
    rows = np.repeat(np.arange(3), [5, 6, 3]).astype(np.int64)  # 3 rows of the batch
    columns = np.concatenate([rng.choice(np.arange(1, n_columns + 1), k, replace=False)
                              for k in (5, 6, 3)]).astype(np.int32)
    ratings = rng.integers(1, 6, n).astype(np.float32)
    autorec = AutoRec(n_rows, n_columns, units=4, seed=0)
    results = []
    for dense in (True, False):
        with tf.GradientTape() as tape:
            prediction, penalty = autorec.reconstruct(
                tf.constant(rows), tf.constant(columns), tf.constant(ratings),
                tf.constant(3, tf.int64), dense)
            loss = tf.reduce_mean(tf.square(prediction - ratings)) + 0.1 * penalty
        gradients = [tf.convert_to_tensor(g).numpy()
                     for g in tape.gradient(loss, autorec.trainable_variables)]
        results.append((prediction.numpy(), penalty.numpy(), gradients))
    (dense_prediction, dense_penalty, dense_grads), (prediction, penalty, grads) = results
    np.testing.assert_allclose(prediction, dense_prediction, rtol=1e-5)
    np.testing.assert_allclose(penalty, dense_penalty, rtol=1e-5)
    # The penalty counts each entry's encoder and decoder rows.
    encoder, decoder = autorec.encoder.numpy(), autorec.decoder.numpy()
    expected = sum(np.sum(encoder[c] ** 2) + np.sum(decoder[c] ** 2) for c in columns)
    np.testing.assert_allclose(penalty, expected, rtol=1e-5)
    for dense_grad, grad in zip(dense_grads, grads):
        np.testing.assert_allclose(grad, dense_grad, rtol=1e-4, atol=1e-6)


def test_autorec_batches_cover_every_row_once_per_epoch_in_seeded_order():
    rng = np.random.default_rng(0)
    rows = rng.integers(1, 60, 4000)
    rows[rows == 7] = 8  # row 7 has no ratings: never in a batch
    matrix = RatingRows(rows, rng.integers(1, 30, 4000),
                        rng.uniform(1, 5, 4000).astype(np.float32), 60, 30)
    dataset, steps = matrix.batches(max_rows=8, max_ratings=10**6, seed=3, epochs=3)
    batches = [batch[ROWS].numpy() for batch in dataset]
    assert steps == 8 and len(batches) == 3 * steps  # ceil(58 rows with ratings / 8)
    epochs = [np.concatenate(batches[e * steps:(e + 1) * steps]) for e in range(3)]
    with_ratings = np.flatnonzero(matrix.counts)
    for order in epochs:
        assert np.array_equal(np.sort(order), with_ratings)
    assert max(map(len, batches)) - min(map(len, batches)) <= 1
    assert not np.array_equal(epochs[0], epochs[1])  # a fresh permutation every epoch
    again = [batch[ROWS].numpy() for batch in matrix.batches(8, 10**6, 3, 3)[0]]
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    # The ratings bound also sets the number of steps.
    assert matrix.batches(max_rows=1000, max_ratings=500, seed=3, epochs=1)[1] == 8
