"""Asking the model a home serves (its latest pushed model): predicted ratings and top-k
recommendations through the SavedModel's own serving signatures (`predict_ratings`,
`recommend`), with titles and genres from the movie catalog the model carries
(assets.extra/movies.tsv), and whether each user and movie was in the training data (the
model's `transform_features` signature buckets unseen ones as never seen). TensorFlow is loaded
by the functions that ask, not on import.
"""

import os
import shlex
from typing import Any, Dict, Sequence

from kiko.pipeline import configs


class AskError(RuntimeError):
    """No model to ask, or a model that cannot answer the question; the message says why."""


def pushed_model_dir(home: str) -> Dict[str, Any]:
    """The pushed model of a home (ML Metadata's record), or AskError saying how to get one."""
    from kiko.metadata.models import pushed_model
    from kiko.metadata.store import open_store

    path = configs.Paths(home).metadata_path
    run = f"kiko run --home {shlex.quote(home)}"  # pasted into a shell: quoted
    if not os.path.isfile(path):
        raise AskError(f"no pipeline has run in {home} yet, so there is no model to ask. Run it "
                       f"first: `{run}` (or `make run` for ./kiko_home).")
    store = open_store(path)
    pushed = pushed_model(store)
    if not pushed["pushed"]:
        raise AskError(f"no model has been pushed in {home} yet: {pushed['reason']}. A run "
                       "pushes its model once the Evaluator blesses it: run the pipeline again "
                       f"(`{run}`, see `--rmse-upper-bound`); `kiko inspect` "
                       "shows what happened.")
    if not pushed["destination_exists"]:
        moved = store.written_in()
        where = (f" (this home's records were written in {moved[0]}; kiko reads a copied or "
                 f"moved home's own files, never the original's)" if moved else "")
        raise AskError(f"the pushed model's folder {pushed['destination']} no longer "
                       f"exists{where}; run the pipeline again to push a model")
    return pushed


def _load(path: str):
    """The SavedModel in `path`, or AskError naming its file when it cannot be read (a
    truncated or overwritten saved_model.pb, damaged variables)."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        return tf.saved_model.load(path)
    except (OSError, ValueError, IndexError, KeyError, DecodeError, tf.errors.OpError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        model_file = os.path.join(path, tf.saved_model.SAVED_MODEL_FILENAME_PB)
        raise AskError(f"the pushed model {model_file} cannot be loaded ({reason}); run the "
                       "pipeline again to push a new model") from None


class _Model:
    """The loaded SavedModel, its catalog, and which ids it saw in training."""

    def __init__(self, pushed: Dict[str, Any]):
        from kiko.model.catalog import read_movie_catalog

        self.info = {"model_id": pushed["model_id"], "version": pushed["version"],
                     "path": pushed["destination"]}
        self.saved = _load(pushed["destination"])
        self.catalog = read_movie_catalog(pushed["destination"])

    def signature(self, name: str):
        if name not in self.saved.signatures:
            raise AskError(f"the pushed model (version {self.info['version']}) has no `{name}` "
                           "signature: it was exported by an older kiko. Run the pipeline again "
                           "to push a model that has it.")
        return self.saved.signatures[name]

    def seen(self, users: Sequence[int], movies: Sequence[int]) -> tuple:
        """(user seen in training, movie seen in training) for each pair, from the model's slice
        features: a count bucket of "0" means never seen."""
        import tensorflow as tf

        from kiko.model import features as fk
        from kiko.model import slicing

        examples = [tf.train.Example(features=tf.train.Features(feature={
            fk.USER_ID: tf.train.Feature(int64_list=tf.train.Int64List(value=[u])),
            fk.MOVIE_ID: tf.train.Feature(int64_list=tf.train.Int64List(value=[m]))}))
            .SerializeToString() for u, m in zip(users, movies)]
        out = self.signature(slicing.TRANSFORM_SIGNATURE)(examples=tf.constant(examples))
        never = slicing.bucket_labels(slicing.USER_ACTIVITY_EDGES)[0].encode()
        return ([bool(v != never) for v in out[slicing.USER_ACTIVITY].numpy()],
                [bool(v != never) for v in out[slicing.MOVIE_POPULARITY].numpy()])

    def describe(self, movie_id: int) -> Dict[str, Any]:
        title, genres = (self.catalog or {}).get(movie_id, (None, ()))
        return {"title": title, "genres": list(genres)}


def predict(home: str, user: int, movies: Sequence[int]) -> Dict[str, Any]:
    """The pushed model's predicted rating of `user` for each movie, with what it knew."""
    import tensorflow as tf

    from kiko.model import features as fk

    model = _Model(pushed_model_dir(home))
    ratings = model.signature(fk.PREDICT_SIGNATURE)(
        **{fk.USER_ID: tf.constant([user] * len(movies), tf.int64),
           fk.MOVIE_ID: tf.constant(list(movies), tf.int64)})[fk.PREDICTION_KEY].numpy()
    users_seen, movies_seen = model.seen([user] * len(movies), movies)
    return {"model": model.info, "has_titles": model.catalog is not None, "predictions": [
        {"user_id": user, "movie_id": movie, **model.describe(movie),
         "rating": float(rating), "user_known": user_seen, "movie_known": movie_seen}
        for movie, rating, user_seen, movie_seen in zip(movies, ratings.reshape(-1),
                                                       users_seen, movies_seen)]}


def recommend(home: str, user: int, k: int) -> Dict[str, Any]:
    """The pushed model's top-k movies for `user` among those they did not rate in training."""
    import tensorflow as tf

    from kiko.model import features as fk

    model = _Model(pushed_model_dir(home))
    out = model.signature(fk.RECOMMEND_SIGNATURE)(
        **{fk.USER_ID: tf.constant([user], tf.int64), fk.RECOMMEND_K: tf.constant(k, tf.int32)})
    ids = out[fk.RECOMMENDED_MOVIE_IDS].numpy()[0]
    scores = out[fk.RECOMMENDED_RATINGS].numpy()[0]
    (user_known,), _ = model.seen([user], [0])
    rows = [{"rank": rank, "movie_id": int(movie), **model.describe(int(movie)),
             "rating": float(score)}
            for rank, (movie, score) in enumerate(
                [(m, s) for m, s in zip(ids, scores) if m != fk.NO_MOVIE_ID], start=1)]
    return {"model": model.info, "has_titles": model.catalog is not None, "user_id": user,
            "user_known": user_known, "k": k, "recommendations": rows}
