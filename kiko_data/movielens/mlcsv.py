"""The `ml-csv` layout of MovieLens-20M and later (25M, 32M, latest, latest-small): CSV, UTF-8.

    ratings.csv  userId,movieId,rating,timestamp        (ratings 0.5 .. 5.0)
    movies.csv   movieId,title,genres                   (titles quoted when they hold commas)

Every line of both files, header included, is read as RFC 4180 CSV: any field may be quoted
(`"1",50,"3.0",972874811` is the same rating as `1,50,3.0,972874811`) and `""` inside quotes is
one quote. Unquoted ratings lines, nearly all of them, take the split-on-commas fast path.
"""

from __future__ import annotations

from kiko.data.movielens.layout import Layout
from kiko.data.movielens.records import (
    Movie, Rating, csv_fields, parse_genres, parse_int, parse_rating_fields, parse_year,
    rating_parser, require_text)

RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"
ENCODING = "utf-8"
RATINGS_HEADER = "userId,movieId,rating,timestamp"
MOVIES_HEADER = "movieId,title,genres"

RATINGS_SEPARATOR = ","

_parse_unquoted_rating = rating_parser(RATINGS_SEPARATOR)


def parse_rating_line(line: str) -> Rating:
    """`userId,movieId,rating,timestamp`; only a line holding a quote needs the CSV reader."""
    if '"' in line:
        return parse_rating_fields(*csv_fields(line, 4))
    return _parse_unquoted_rating(line)


def parse_movie_line(line: str) -> Movie:
    """`movieId,title,genres` with CSV quoting (`"American President, The (1995)"`)."""
    movie, title, genres = csv_fields(line, 3)
    movie_id = parse_int(movie, "movieId")
    require_text(title, "title")
    return Movie(movie_id, title, parse_year(title), parse_genres(genres))


LAYOUT = Layout(
    name="ml-csv", releases="MovieLens-20M, -25M, -32M, -latest, -latest-small",
    ratings_file=RATINGS_FILE, users_file=None, movies_file=MOVIES_FILE,
    ratings_encoding=ENCODING, side_encoding=ENCODING, parse_rating=parse_rating_line,
    parse_movie=parse_movie_line, ratings_header=RATINGS_HEADER, movies_header=MOVIES_HEADER,
    ratings_separator=RATINGS_SEPARATOR)
