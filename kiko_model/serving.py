"""Prediction in memory and the exported SavedModel with its signatures."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from kiko.model import features as fk
from kiko.model.blend import RatingModel
from kiko.model.catalog import write_movie_catalog

try:  # tf-keras' switch behind `Model.save(save_traces=False)`, pinned with the stack
    from tf_keras.src.saving.legacy.saved_model.utils import keras_option_scope
except ImportError:  # another Keras 2: its layers' traces are saved too (slower, same model)
    keras_option_scope = None

_PREDICT_BATCH = 65536


def _predict_fn(model: RatingModel):
    fn = getattr(model, "_kiko_predict_fn", None)
    if fn is None:
        fn = tf.function(lambda users, movies: model({fk.USER_ID: users, fk.MOVIE_ID: movies}),
                         input_signature=[tf.TensorSpec([None], tf.int64)] * 2, autograph=False)
        model._kiko_predict_fn = fn
    return fn


def predict(model: RatingModel, features: Mapping[str, np.ndarray]) -> np.ndarray:
    """Ratings (float32, clipped to the training range) for the id pairs in ``features``."""
    users = np.asarray(features[fk.USER_ID], dtype=np.int64)
    movies = np.asarray(features[fk.MOVIE_ID], dtype=np.int64)
    fn = _predict_fn(model)
    out = [fn(tf.constant(users[i:i + _PREDICT_BATCH]), tf.constant(movies[i:i + _PREDICT_BATCH]))
           .numpy() for i in range(0, len(users), _PREDICT_BATCH)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


class _ServingModule(tf.Module):
    """What is exported: the model and its signatures."""

    def __init__(self, model: RatingModel):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=fk.USER_ID),
                                  tf.TensorSpec([None], tf.int64, name=fk.MOVIE_ID)],
                 autograph=False)
    def predict_ratings(self, user_id, movie_id):
        return {fk.PREDICTION_KEY: self.model({fk.USER_ID: user_id, fk.MOVIE_ID: movie_id})}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=fk.USER_ID),
                                  tf.TensorSpec([], tf.int32, name=fk.RECOMMEND_K)],
                 autograph=False)
    def recommend(self, user_id, k):
        return self.model.recommend(user_id, k)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                 autograph=False)
    def serve_examples(self, examples):
        # Side features in the Example are not needed: the model looks them up by id.
        spec = {fk.USER_ID: tf.io.FixedLenFeature([], tf.int64, default_value=0),
                fk.MOVIE_ID: tf.io.FixedLenFeature([], tf.int64, default_value=0)}
        parsed = tf.io.parse_example(examples, spec)
        return {fk.PREDICTION_KEY: self.model(parsed)}


def export_saved_model(model: RatingModel, export_dir: str,
                       extra_signatures: Optional[Mapping[str, tf.Module]] = None,
                       catalog: Optional[Mapping[str, Sequence]] = None) -> str:
    """Write a SavedModel with `serving_default` (tf.Example), `predict_ratings` (ids) and
    `recommend` (user ids, k), plus the movie catalog when there is one.

    `extra_signatures` maps more signature names to modules whose tf.function of that name
    has an input signature (e.g. TFMA's `transform_features` for slicing). `catalog` (see
    `catalog.write_movie_catalog`) goes to assets.extra/ inside the SavedModel.
    """
    module = _ServingModule(model)
    signatures = {fk.SERVING_SIGNATURE: module.serve_examples.get_concrete_function(),
                  fk.PREDICT_SIGNATURE: module.predict_ratings.get_concrete_function(),
                  fk.RECOMMEND_SIGNATURE: module.recommend.get_concrete_function()}
    for name, extra in (extra_signatures or {}).items():
        setattr(module, f"_extra_{name}", extra)
        signatures[name] = getattr(extra, name).get_concrete_function()
    # The signatures above are what serves; Keras would also trace and save every layer's
    # own call functions (most of the export's time), which nothing loads.
    if keras_option_scope is None:
        tf.saved_model.save(module, export_dir, signatures=signatures)
    else:
        with keras_option_scope(save_traces=False):
            tf.saved_model.save(module, export_dir, signatures=signatures)
    if catalog is not None:
        write_movie_catalog(catalog, export_dir)
    return export_dir
