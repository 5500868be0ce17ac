"""MovieLens-1M: `ratings.dat`, `users.dat`, `movies.dat`, `::`-separated, latin-1.

    ratings.dat  UserID::MovieID::Rating::Timestamp
    users.dat    UserID::Gender::Age::Occupation::Zip-code   (age group code, occupation code)
    movies.dat   MovieID::Title (Year)::Genre|Genre|...
"""

from __future__ import annotations

from kiko.data.movielens.layout import Layout
from kiko.data.movielens.records import (
    LineError, Movie, User, parse_genres, parse_int, parse_year, rating_parser, require_text,
    split_fields)

SEPARATOR = "::"
RATINGS_FILE = "ratings.dat"
USERS_FILE = "users.dat"
MOVIES_FILE = "movies.dat"
ENCODING = "latin-1"

# ML-1M's occupation codes and their names, from its README; users.dat stores the code, kiko
# stores the name (ML-100K writes names, and one feature cannot be an int in one release and a
# string in another).
OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer")
# ML-1M's age groups (users.dat stores the group's code: 1 means "Under 18").
AGE_CODES = (1, 18, 25, 35, 45, 50, 56)

parse_rating_line = rating_parser(SEPARATOR)


def parse_user_line(line: str) -> User:
    """`UserID::Gender::Age::Occupation::Zip-code`; the occupation code becomes its name."""
    user, gender, age, occupation, zip_code = split_fields(line, SEPARATOR, 5)
    code = parse_int(occupation, "occupation")
    if code >= len(OCCUPATIONS):
        raise LineError(f"occupation {code} is not an ML-1M occupation code "
                        f"(0-{len(OCCUPATIONS) - 1})")
    return User(parse_int(user, "UserID"), require_text(gender, "gender"),
                parse_int(age, "age"), OCCUPATIONS[code], require_text(zip_code, "zip code"))


def parse_movie_line(line: str) -> Movie:
    """`MovieID::Title (Year)::Genre|Genre|...`; the title is kept verbatim."""
    movie, title, genres = split_fields(line, SEPARATOR, 3)
    movie_id = parse_int(movie, "MovieID")
    require_text(title, "title")
    return Movie(movie_id, title, parse_year(title), parse_genres(genres))


LAYOUT = Layout(
    name="ml-1m", releases="MovieLens-1M", ratings_file=RATINGS_FILE, users_file=USERS_FILE,
    movies_file=MOVIES_FILE, ratings_encoding=ENCODING, side_encoding=ENCODING,
    parse_rating=parse_rating_line, parse_user=parse_user_line, parse_movie=parse_movie_line,
    ratings_separator=SEPARATOR)
