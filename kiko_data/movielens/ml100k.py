"""MovieLens-100K: `u.data` (tab-separated), `u.user` and `u.item` (`|`-separated), latin-1.

    u.data  user id \\t item id \\t rating \\t timestamp
    u.user  user id | age | gender | occupation | zip code             (age in years)
    u.item  movie id | title | release date | video release date | IMDb URL | 19 genre flags
"""

from __future__ import annotations

from kiko.data.movielens.layout import Layout
from kiko.data.movielens.records import (
    LineError, Movie, User, parse_int, parse_year, rating_parser, require_text, split_fields)

RATINGS_FILE = "u.data"
USERS_FILE = "u.user"
MOVIES_FILE = "u.item"
ENCODING = "latin-1"
SEPARATOR = "|"
# The genre flags of u.item, in their order (ML-100K's u.genre / README).
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western")
_ITEM_FIELDS = 5 + len(GENRES)

RATINGS_SEPARATOR = "\t"

parse_rating_line = rating_parser(RATINGS_SEPARATOR)


def parse_user_line(line: str) -> User:
    """`user id|age|gender|occupation|zip code`."""
    user, age, gender, occupation, zip_code = split_fields(line, SEPARATOR, 5)
    return User(parse_int(user, "user id"), require_text(gender, "gender"),
                parse_int(age, "age"), require_text(occupation, "occupation"),
                require_text(zip_code, "zip code"))


def parse_movie_line(line: str) -> Movie:
    """`movie id|title|release date|video release date|IMDb URL|flag|...|flag`.

    The year is the title's `(YYYY)`, else the release date's (`01-Jan-1995`).
    """
    fields = split_fields(line, SEPARATOR, _ITEM_FIELDS)
    movie_id = parse_int(fields[0], "movie id")
    title = require_text(fields[1], "title")
    flags = fields[5:]
    if any(flag not in ("0", "1") for flag in flags):
        raise LineError(f"genre flags must be 0 or 1, got {'|'.join(flags)!r}")
    genres = tuple(g for g, flag in zip(GENRES, flags) if flag == "1")
    if not genres:
        raise LineError("no genre flag set")
    year = parse_year(title)
    release = fields[2].strip()
    if year is None and release[-4:].isascii() and release[-4:].isdigit():
        year = int(release[-4:])
    return Movie(movie_id, title, year, genres)


LAYOUT = Layout(
    name="ml-100k", releases="MovieLens-100K", ratings_file=RATINGS_FILE,
    users_file=USERS_FILE, movies_file=MOVIES_FILE, ratings_encoding=ENCODING,
    side_encoding=ENCODING, parse_rating=parse_rating_line, parse_user=parse_user_line,
    parse_movie=parse_movie_line, ratings_separator=RATINGS_SEPARATOR)
