"""The `ml-csv` layout of MovieLens-20M and later (25M, 32M, latest, latest-small): CSV, UTF-8.

    ratings.csv  userId,movieId,rating,timestamp        (ratings 0.5 .. 5.0)
    movies.csv   movieId,title,genres                   (titles quoted when they hold commas)
"""

from __future__ import annotations

import csv

from kiko.data.movielens.layout import Layout
from kiko.data.movielens.records import (
    LineError, Movie, parse_genres, parse_int, parse_year, rating_parser, require_text)

RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"
ENCODING = "utf-8"
RATINGS_HEADER = "userId,movieId,rating,timestamp"
MOVIES_HEADER = "movieId,title,genres"

parse_rating_line = rating_parser(",")


def parse_movie_line(line: str) -> Movie:
    """`movieId,title,genres` with CSV quoting (`"American President, The (1995)"`)."""
    try:
        rows = list(csv.reader([line.rstrip("\r\n")], strict=True))
    except csv.Error as error:
        raise LineError(f"bad CSV quoting ({error})") from None
    fields = rows[0] if rows else []
    if len(fields) != 3:
        raise LineError(f"expected 3 comma-separated fields, got {len(fields)}")
    movie, title, genres = fields
    movie_id = parse_int(movie, "movieId")
    require_text(title, "title")
    return Movie(movie_id, title, parse_year(title), parse_genres(genres))


LAYOUT = Layout(
    name="ml-csv", releases="MovieLens-20M, -25M, -32M, -latest, -latest-small",
    ratings_file=RATINGS_FILE, users_file=None, movies_file=MOVIES_FILE,
    ratings_encoding=ENCODING, side_encoding=ENCODING, parse_rating=parse_rating_line,
    parse_movie=parse_movie_line, ratings_header=RATINGS_HEADER, movies_header=MOVIES_HEADER)
