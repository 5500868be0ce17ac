"""`kiko predict` and `kiko recommend`: ask the model a home serves (its latest pushed model).

    kiko predict --user U --movie M [--movie M2 ...] [--home DIR] [--json]
    kiko recommend --user U [-k 10] [--home DIR] [--json]

Both call the SavedModel's own serving signatures (`predict_ratings`, `recommend`), show titles
and genres from the movie catalog the model carries (assets.extra/movies.tsv), and say when a
user or movie was not in the training data (the model's `transform_features` signature buckets
them as never seen) and what the model answers instead.
"""

import argparse
import json
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from pipeline import configs
from pipeline.inspect_metadata import fmt, table


class AskError(RuntimeError):
    """No model to ask, or a model that cannot answer the question; the message says why."""


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--user", type=int, required=True, metavar="USER_ID",
                        help="MovieLens user id")
    parser.add_argument("--home", default="", help=f"pipeline home whose pushed model answers "
                        f"(default: ${configs.HOME_ENV}, else ./{configs.DEFAULT_HOME})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def pushed_model_dir(home: str) -> Dict[str, Any]:
    """The pushed model of a home (ML Metadata's record), or AskError saying how to get one."""
    from pipeline import metadata_reader as reader

    path = configs.Paths(home).metadata_path
    if not os.path.isfile(path):
        raise AskError(f"no pipeline has run in {home} yet, so there is no model to ask. Run it "
                       f"first: `kiko run --home {home}` (or `make run` for ./kiko_home).")
    pushed = reader.pushed_model(reader.open_store(path))
    if not pushed["pushed"]:
        raise AskError(f"no model has been pushed in {home} yet: {pushed['reason']}. A run "
                       "pushes its model once the Evaluator blesses it: run the pipeline again "
                       f"(`kiko run --home {home}`, see `--rmse-upper-bound`); `kiko inspect` "
                       "shows what happened.")
    if not pushed["destination_exists"]:
        raise AskError(f"the pushed model's folder {pushed['destination']} no longer exists; "
                       "run the pipeline again to push a model")
    return pushed


class _Model:
    """The loaded SavedModel, its catalog, and which ids it saw in training."""

    def __init__(self, pushed: Dict[str, Any]):
        import tensorflow as tf

        from kiko_model import model as kiko

        self.info = {"model_id": pushed["model_id"], "version": pushed["version"],
                     "path": pushed["destination"]}
        self.saved = tf.saved_model.load(pushed["destination"])
        self.catalog = kiko.read_movie_catalog(pushed["destination"])

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

        from kiko_model import features as fk
        from kiko_model import slicing

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

    from kiko_model import features as fk

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

    from kiko_model import features as fk

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


def _unknown_note(user: int, movie: int, user_known: bool, movie_known: bool) -> Optional[str]:
    if user_known and movie_known:
        return None
    if not user_known and not movie_known:
        return (f"user {user} and movie {movie} are not in the training data: the prediction "
                "is the global mean rating")
    if not user_known:
        return (f"user {user} is not in the training data: the prediction falls back to "
                f"movie {movie}'s bias and the global mean (nothing personal)")
    return (f"movie {movie} is not in the training data: the prediction falls back to user "
            f"{user}'s bias and the global mean")


def _columns(result: Dict[str, Any]) -> List[str]:
    return ["TITLE", "GENRES"] if result["has_titles"] else []


def _cells(row: Dict[str, Any], result: Dict[str, Any]) -> List[Any]:
    return [row["title"], "|".join(row["genres"]) or None] if result["has_titles"] else []


def _print_model(result: Dict[str, Any]) -> None:
    info = result["model"]
    print(f"pushed model {info['model_id']}, version {info['version']} ({info['path']})")
    if not result["has_titles"]:
        print("(no titles: the model carries no movie catalog; its data had no movies.dat, "
              "or it was exported by an older kiko)")


def _ask(prog: str, args: argparse.Namespace, ask: Callable[[str], dict]) -> Union[dict, int]:
    """The answer of ``ask(home)`` to show as a table (the model line printed), or the exit
    status when there is nothing more to print: 0 after printing it as JSON, 2 after an
    error."""
    try:
        result = ask(configs.home_dir(args.home))
    except AskError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    _print_model(result)
    return result


def predict_main(argv: Optional[List[str]] = None) -> int:
    parser = _parser("kiko predict", "Predicted ratings of a user for movies, from the model "
                     "the home serves (its latest pushed model).")
    parser.add_argument("--movie", type=int, action="append", required=True, metavar="MOVIE_ID",
                        help="MovieLens movie id (repeat for several movies)")
    args = parser.parse_args(argv)
    result = _ask("kiko predict", args, lambda home: predict(home, args.user, args.movie))
    if not isinstance(result, dict):
        return result
    rows = result["predictions"]
    print(table(["USER", "MOVIE"] + _columns(result) + ["PREDICTED RATING"],
                [[r["user_id"], r["movie_id"]] + _cells(r, result) + [fmt(r["rating"], 2)]
                 for r in rows]))
    notes = dict.fromkeys(_unknown_note(r["user_id"], r["movie_id"], r["user_known"],
                                        r["movie_known"]) for r in rows)
    for note in filter(None, notes):
        print(f"note: {note}")
    return 0


def recommend_main(argv: Optional[List[str]] = None) -> int:
    parser = _parser("kiko recommend", "The movies the served model (the home's latest pushed "
                     "model) predicts a user will rate highest, among those the user did not "
                     "rate in training.")
    parser.add_argument("-k", type=int, default=10, help="how many movies (default 10)")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"-k must be at least 1, got {args.k}")
    result = _ask("kiko recommend", args, lambda home: recommend(home, args.user, args.k))
    if not isinstance(result, dict):
        return result
    rows = result["recommendations"]
    print(table(["RANK", "MOVIE"] + _columns(result) + ["PREDICTED RATING"],
                [[r["rank"], r["movie_id"]] + _cells(r, result) + [fmt(r["rating"], 2)]
                 for r in rows]))
    if not result["user_known"]:
        print(f"note: user {args.user} is not in the training data: these are the popular, "
              "well-rated movies the model recommends to any new user")
    if len(rows) < args.k:
        print(f"note: only {len(rows)} movies the model knows are unrated by user {args.user}")
    return 0
