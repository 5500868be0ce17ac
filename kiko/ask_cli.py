"""`kiko predict` and `kiko recommend`: ask the model a home serves (kiko.ask) and print the
answer as a table, with notes on users and movies the model never saw (or as JSON).

    kiko predict --user U --movie M [--movie M2 ...] [--home DIR] [--json]
    kiko recommend --user U [-k 10] [--home DIR] [--json]

Ids and -k are checked here, before TensorFlow sees them: an id is what a MovieLens file may hold
(plain ASCII digits, 0 to the int64 maximum, kiko.data.movielens.records.parse_int), -k is 1 to
MAX_K. Titles and genres are printed made safe for a terminal; --json prints them exact.
"""

import argparse
import json
import sys
from typing import Any, Callable, Dict, List, Optional, Union

from kiko.ask import AskError, predict, recommend
from kiko.data.movielens.records import MAX_INT64, LineError, parse_int
from kiko.pipeline import configs
from kiko.text import echo, fmt, table

# Most movies `recommend -k` asks for: above any MovieLens catalog, well inside the model's int32.
MAX_K = 1_000_000
ID_HELP = f"(digits only, 0 to {MAX_INT64}, as in the data files)"


def _id(text: str) -> int:
    """An argparse type: a MovieLens id as the data files write it."""
    try:
        return parse_int(text, "id")
    except LineError as error:
        raise argparse.ArgumentTypeError(
            f"{error}; an id is plain digits, 0 to {MAX_INT64}") from None


def _k(text: str) -> int:
    """An argparse type: how many movies to recommend, 1 to MAX_K."""
    try:
        k = parse_int(text, "-k")
    except LineError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not 1 <= k <= MAX_K:
        raise argparse.ArgumentTypeError(f"-k must be 1 to {MAX_K:,}, got {text}")
    return k


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--user", type=_id, required=True, metavar="USER_ID",
                        help=f"MovieLens user id {ID_HELP}")
    parser.add_argument("--home", default="", help=f"pipeline home whose pushed model answers "
                        f"(default: ${configs.HOME_ENV}, else ./{configs.DEFAULT_HOME})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


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


def _print_rows(result: Dict[str, Any], rows: List[Dict[str, Any]], first: str,
                header: str) -> None:
    """One line per movie: the row's `first` field under `header`, the movie, its title and
    genres when the model carries a catalog, and the predicted rating."""
    titles = ["TITLE", "GENRES"] if result["has_titles"] else []
    print(table([header, "MOVIE"] + titles + ["PREDICTED RATING"],
                [[r[first], r["movie_id"]]
                 + ([r["title"], "|".join(r["genres"]) or None] if titles else [])
                 + [fmt(r["rating"], 2)] for r in rows]))


def _print_model(result: Dict[str, Any]) -> None:
    info = result["model"]
    echo(f"pushed model {info['model_id']}, version {info['version']} ({info['path']})")
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
        echo(f"{prog}: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    _print_model(result)
    return result


def predict_main(argv: Optional[List[str]] = None) -> int:
    parser = _parser("kiko predict", "Predicted ratings of a user for movies, from the model "
                     "the home serves (its latest pushed model).")
    parser.add_argument("--movie", type=_id, action="append", required=True, metavar="MOVIE_ID",
                        help=f"MovieLens movie id {ID_HELP}; repeat for several movies")
    args = parser.parse_args(argv)
    result = _ask("kiko predict", args, lambda home: predict(home, args.user, args.movie))
    if not isinstance(result, dict):
        return result
    rows = result["predictions"]
    _print_rows(result, rows, "user_id", "USER")
    notes = dict.fromkeys(_unknown_note(r["user_id"], r["movie_id"], r["user_known"],
                                        r["movie_known"]) for r in rows)
    for note in filter(None, notes):
        print(f"note: {note}")
    return 0


def recommend_main(argv: Optional[List[str]] = None) -> int:
    parser = _parser("kiko recommend", "The movies the served model (the home's latest pushed "
                     "model) predicts a user will rate highest, among those the user did not "
                     "rate in training.")
    parser.add_argument("-k", type=_k, default=10,
                        help=f"how many movies, 1 to {MAX_K:,} (default 10)")
    args = parser.parse_args(argv)
    result = _ask("kiko recommend", args, lambda home: recommend(home, args.user, args.k))
    if not isinstance(result, dict):
        return result
    rows = result["recommendations"]
    _print_rows(result, rows, "rank", "RANK")
    if not result["user_known"]:
        print(f"note: user {args.user} is not in the training data: these are the popular, "
              "well-rated movies the model recommends to any new user")
    if len(rows) < args.k:
        print(f"note: only {len(rows)} movies the model knows are unrated by user {args.user}")
    return 0
