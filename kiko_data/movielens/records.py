"""Records of MovieLens files and the pure field parsers that every layout shares.

A field parser takes the text of one field and returns its value or raises `LineError` with the
reason. Values are never altered: an id or timestamp outside int64's range, a rating that is not
a finite number or that a 32-bit float cannot hold exactly is an error, not a wrapped value.
"""

from __future__ import annotations

import csv
import math
import struct
from fractions import Fraction
from typing import NamedTuple, Optional

# Largest value of an int64 feature; ids and timestamps above it cannot be stored.
MAX_INT64 = 2 ** 63 - 1
# Longest part of a bad line quoted in an error message.
_MAX_QUOTED_LINE = 200
MAX_INT64_DIGITS = len(str(MAX_INT64))
_DECIMAL_CHARS = frozenset("0123456789.+-eE")
_ASCII_WHITESPACE = " \t\r\n\f\v"
GENRE_SEPARATOR = "|"

# Ratings as MovieLens writes them ("4", "4.0", "3.5"): parsed by one dictionary look-up.
COMMON_RATINGS = {text: value for half in range(0, 11) for value in (half / 2,)
                   for text in {f"{value:g}", f"{value:.1f}"}}


class LineError(ValueError):
    """A line that does not follow its file's format; the message is just the reason."""


class MovieLensFormatError(ValueError):
    """A bad line in a MovieLens file, located as `path:line_number`."""

    def __init__(self, path: str, line_number: int, line: str, reason: str) -> None:
        self.path = path
        self.line_number = line_number
        self.line = line
        self.reason = reason
        super().__init__(path, line_number, line, reason)

    def __str__(self) -> str:
        return f"{self.path}:{self.line_number}: {self.reason}: {quote_line(self.line)}"


def quote_line(line: str) -> str:
    """The line as repr(), cut to a readable length."""
    if len(line) > _MAX_QUOTED_LINE:
        return f"{line[:_MAX_QUOTED_LINE]!r}... ({len(line)} characters)"
    return repr(line)


class Rating(NamedTuple):
    """One rating line."""

    user_id: int
    movie_id: int
    rating: float
    timestamp: int


class User(NamedTuple):
    """One line of a users file (ML-100K `u.user`, ML-1M `users.dat`).

    `age` is the file's value: ML-1M's age-group code (1, 18, 25, ...) or ML-100K's age in
    years. `occupation` is a name: ML-100K writes names, ML-1M's codes are decoded to the names
    of its README (a lossless, documented mapping).
    """

    user_id: int
    gender: str
    age: int
    occupation: str
    zip_code: str


class Movie(NamedTuple):
    """One line of a movies file; `title` is verbatim, `year` the trailing `(YYYY)` if any."""

    movie_id: int
    title: str
    year: Optional[int]
    genres: tuple[str, ...]


def is_blank(line: str) -> bool:
    """True for empty or ASCII-whitespace-only lines: they carry no data and readers skip them.

    Not str.isspace: latin-1 control bytes such as 0x1c and 0x85 are garbage, not blanks.
    """
    return not line.strip(_ASCII_WHITESPACE)


def csv_fields(line: str, expected: int) -> list[str]:
    """Exactly `expected` fields of one RFC 4180 CSV line (quoted fields, `""` for a quote),
    or LineError. Files are read line by line: a quoted field cannot hold a line break."""
    try:
        rows = list(csv.reader([line.rstrip("\r\n")], strict=True))
    except csv.Error as error:
        raise LineError(f"bad CSV quoting ({error})") from None
    fields = rows[0] if rows else []
    if len(fields) != expected:
        raise LineError(f"expected {expected} fields separated by ',', got {len(fields)}")
    return fields


def split_fields(line: str, separator: str, expected: int) -> list[str]:
    """Exactly `expected` fields of a line (trailing newline removed), or LineError."""
    fields = line.rstrip("\r\n").split(separator)
    if len(fields) != expected:
        raise LineError(
            f"expected {expected} fields separated by {separator!r}, got {len(fields)}")
    return fields


def parse_int(value: str, name: str) -> int:
    """A non-negative decimal integer (ASCII digits only) that fits int64."""
    if value.isascii() and value.isdigit():
        if len(value) >= MAX_INT64_DIGITS and int(value) > MAX_INT64:
            raise LineError(f"{name} {value} is larger than the int64 maximum {MAX_INT64}")
        return int(value)
    if not value:
        raise LineError(f"empty {name}")
    if "\x00" in value:
        raise LineError(f"{name} {value!r} contains a NUL byte")
    if value[0] == "-" and value[1:].isascii() and value[1:].isdigit():
        raise LineError(f"{name} {value} is negative")
    raise LineError(f"{name} {value!r} is not an integer")


def parse_rating_value(value: str) -> float:
    """A rating: a finite decimal number that a 32-bit float holds exactly (range not checked).

    Ranges are the schema's job downstream; a value like 3.3 that float32 would round is an
    error here, so that no stored rating differs from the file.
    """
    rating = COMMON_RATINGS.get(value)
    if rating is not None:
        return rating
    if not value:
        raise LineError("empty rating")
    # float() also takes spaces, '_', 'nan' and 'infinity': only plain decimals are the format.
    if not _DECIMAL_CHARS.issuperset(value):
        raise LineError(f"rating {value!r} is not a number")
    try:
        rating = float(value)
    except ValueError:
        raise LineError(f"rating {value!r} is not a number") from None
    if not math.isfinite(rating):
        raise LineError(f"rating {value!r} is not a finite number")
    try:
        stored = struct.unpack("<f", struct.pack("<f", rating))[0]
    except OverflowError:
        raise LineError(f"rating {value!r} does not fit a 32-bit float") from None
    if Fraction(value) != Fraction(stored):
        raise LineError(f"rating {value!r} cannot be stored exactly as a 32-bit float "
                        f"(it would become {stored!r})")
    return rating


def require_text(value: str, name: str) -> str:
    """A free-text field, refusing an empty or whitespace-only one."""
    if is_blank(value):
        raise LineError(f"empty {name}")
    return value


def parse_year(title: str) -> Optional[int]:
    """The year of a `Title (YYYY)`: the last `(YYYY)` ending the title, else None."""
    end = title.rstrip()
    if len(end) >= 6 and end[-1] == ")" and end[-6] == "(":
        digits = end[-5:-1]
        if digits.isascii() and digits.isdigit():
            return int(digits)
    return None


def parse_genres(text: str) -> tuple[str, ...]:
    """`Genre|Genre|...`, refusing an empty list or an empty genre."""
    if not text:
        raise LineError("no genres")
    genres = tuple(text.split(GENRE_SEPARATOR))
    if any(is_blank(genre) for genre in genres):
        raise LineError(f"empty genre in {text!r}")
    return genres


def parse_rating_fields(user: str, movie: str, value: str, timestamp: str) -> Rating:
    """A rating from the text of its four fields, each checked by its precise parser."""
    return Rating(parse_int(user, "UserID"), parse_int(movie, "MovieID"),
                  parse_rating_value(value), parse_int(timestamp, "timestamp"))


def rating_parser(separator: str):
    """A parser of `user<sep>movie<sep>rating<sep>timestamp` lines (the hot path of ingestion).

    The common all-ASCII line with small integers and a MovieLens-style rating is parsed with a
    few look-ups; anything else goes through the precise field parsers.
    """

    def parse_rating_line(line: str) -> Rating:
        fields = line.rstrip("\r\n").split(separator)
        if len(fields) != 4:
            raise LineError(
                f"expected 4 fields separated by {separator!r}, got {len(fields)}")
        user, movie, value, timestamp = fields
        rating = COMMON_RATINGS.get(value)
        if (rating is not None and line.isascii() and user.isdigit() and movie.isdigit()
                and timestamp.isdigit() and len(user) < MAX_INT64_DIGITS
                and len(movie) < MAX_INT64_DIGITS and len(timestamp) < MAX_INT64_DIGITS):
            return Rating(int(user), int(movie), rating, int(timestamp))
        return parse_rating_fields(user, movie, value, timestamp)

    return parse_rating_line
