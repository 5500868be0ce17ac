"""Optimisers of the members' training."""

from __future__ import annotations

import tensorflow as tf

# Tables with at most this many rows get dense Adam updates (see LazyAdam).
DENSE_UPDATE_ROWS = 16384


class LazyAdam(tf.keras.optimizers.legacy.Adam):
    """Adam whose sparse (embedding-row) updates of large tables touch only the batch's rows.

    Keras' Adam decays the moments of every row of a table on every step, even for a sparse
    gradient: O(table) per step, so an epoch would cost ratings x table size. Here a sparse
    gradient of a table with more than DENSE_UPDATE_ROWS rows updates the moments and values
    of its rows only (as TF Addons' LazyAdam did). Smaller tables, and dense gradients, get
    plain Adam: a dense step over a few thousand rows is cheaper than deduplicating the rows.
    """

    def _resource_apply_sparse_duplicate_indices(self, grad, handle, indices, **kwargs):
        rows = handle.shape[0]
        if rows is not None and rows <= DENSE_UPDATE_ROWS:
            dense = tf.math.unsorted_segment_sum(grad, indices, rows)
            return self._resource_apply_dense(dense, handle, **kwargs)
        return super()._resource_apply_sparse_duplicate_indices(grad, handle, indices, **kwargs)

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        var_device, var_dtype = var.device, var.dtype.base_dtype
        coefficients = ((apply_state or {}).get((var_device, var_dtype))
                        or self._fallback_apply_state(var_device, var_dtype))
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        m_rows = (coefficients["beta_1_t"] * tf.gather(m, indices)
                  + coefficients["one_minus_beta_1_t"] * grad)
        v_rows = (coefficients["beta_2_t"] * tf.gather(v, indices)
                  + coefficients["one_minus_beta_2_t"] * tf.square(grad))
        step = coefficients["lr"] * m_rows / (tf.sqrt(v_rows) + coefficients["epsilon"])
        return tf.group(m.scatter_update(tf.IndexedSlices(m_rows, indices)),
                        v.scatter_update(tf.IndexedSlices(v_rows, indices)),
                        var.scatter_sub(tf.IndexedSlices(step, indices)))
