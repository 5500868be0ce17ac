"""MovieLens-10M: `ratings.dat` (half stars) and `movies.dat`, `::`-separated, UTF-8, no users.

    ratings.dat  UserID::MovieID::Rating::Timestamp      (ratings 0.5 .. 5.0)
    movies.dat   MovieID::Title (Year)::Genre|Genre|...   (UTF-8 titles)
    tags.dat     UserID::MovieID::Tag::Timestamp          (not read; tells ML-10M from ML-1M)
"""

from __future__ import annotations

from kiko.data.movielens import ml1m
from kiko.data.movielens.layout import Layout

ENCODING = "utf-8"
TAGS_FILE = "tags.dat"

LAYOUT = Layout(
    name="ml-10m", releases="MovieLens-10M", ratings_file=ml1m.RATINGS_FILE, users_file=None,
    movies_file=ml1m.MOVIES_FILE, ratings_encoding=ENCODING, side_encoding=ENCODING,
    parse_rating=ml1m.parse_rating_line, parse_movie=ml1m.parse_movie_line,
    marker_file=TAGS_FILE, ratings_separator=ml1m.SEPARATOR)
