"""Pure parsing of the MovieLens-1M file format (ratings.dat, users.dat, movies.dat).

No Beam and no TensorFlow here: line parsers, readers that report `file:line` on bad input,
input resolution (zip, folder or a bare ratings file) and byte-range chunking for parallel reads.
Only the format is checked; value ranges (a rating of 7, an unknown genre) are left to data
validation downstream.
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from dataclasses import dataclass
from typing import IO, Callable, Iterable, Iterator, NamedTuple, Optional, TypeVar, Union

from kiko_model.features import (
    ML1M_ENCODING,
    ML1M_SEPARATOR,
    MOVIES_FILE,
    RATINGS_FILE,
    USERS_FILE,
)

# Longest part of a bad line quoted in an error message.
_MAX_QUOTED_LINE = 200

_RATING_FIELDS = 4
_USER_FIELDS = 5
_MOVIE_FIELDS = 3
_GENRE_SEPARATOR = "|"
_DECIMAL_CHARS = frozenset("0123456789.+-eE")


class LineError(ValueError):
    """A line that does not follow the format; the message is just the reason."""


class MovieLensFormatError(ValueError):
    """A bad line in a MovieLens file, located as `path:line_number`."""

    def __init__(self, path: str, line_number: int, line: str, reason: str) -> None:
        self.path = path
        self.line_number = line_number
        self.line = line
        self.reason = reason
        super().__init__(path, line_number, line, reason)

    def __str__(self) -> str:
        quoted = repr(self.line)
        if len(self.line) > _MAX_QUOTED_LINE:
            quoted = f"{self.line[:_MAX_QUOTED_LINE]!r}... ({len(self.line)} characters)"
        return f"{self.path}:{self.line_number}: {self.reason}: {quoted}"


class Rating(NamedTuple):
    """One line of ratings.dat."""

    user_id: int
    movie_id: int
    rating: float
    timestamp: int


class User(NamedTuple):
    """One line of users.dat."""

    user_id: int
    gender: str
    age: int
    occupation: int
    zip_code: str


class Movie(NamedTuple):
    """One line of movies.dat; `title` is verbatim, `year` the trailing `(YYYY)` if any."""

    movie_id: int
    title: str
    year: Optional[int]
    genres: tuple[str, ...]


# --- pure line parsers -------------------------------------------------------------------------

_ASCII_WHITESPACE = " \t\r\n\f\v"


def is_blank(line: str) -> bool:
    """True for empty or ASCII-whitespace-only lines: they carry no data and readers skip them.

    Not str.isspace: latin-1 control bytes such as 0x1c and 0x85 are garbage, not blanks.
    """
    return not line.strip(_ASCII_WHITESPACE)


def _split(line: str, expected: int) -> list[str]:
    """Split a line (trailing newline removed) into exactly `expected` fields or raise."""
    fields = line.rstrip("\r\n").split(ML1M_SEPARATOR)
    if len(fields) != expected:
        raise LineError(
            f"expected {expected} fields separated by {ML1M_SEPARATOR!r}, got {len(fields)}")
    return fields


def _parse_uint(value: str, name: str) -> int:
    """Parse an unsigned decimal integer field (ASCII digits only) with a precise reason."""
    if value.isascii() and value.isdigit():
        return int(value)
    if not value:
        raise LineError(f"empty {name}")
    if value[0] == "-" and value[1:].isascii() and value[1:].isdigit():
        raise LineError(f"{name} {value} is negative")
    raise LineError(f"{name} {value!r} is not an integer")


def _parse_rating_value(value: str) -> float:
    """Parse a rating as a finite decimal number; its range is not checked here."""
    if not value:
        raise LineError("empty rating")
    # float() also takes spaces, '_', 'nan' and 'infinity': only plain decimals are the format.
    if not _DECIMAL_CHARS.issuperset(value):
        raise LineError(f"rating {value!r} is not a number")
    try:
        rating = float(value)
    except ValueError:
        raise LineError(f"rating {value!r} is not a number") from None
    if rating - rating != 0.0:
        raise LineError(f"rating {value!r} is not a finite number")
    return rating


def _require_text(value: str, name: str) -> str:
    """Return a free-text field, refusing an empty or whitespace-only one."""
    if is_blank(value):
        raise LineError(f"empty {name}")
    return value


def parse_rating_line(line: str) -> Rating:
    """Parse `UserID::MovieID::Rating::Timestamp`; hot path, so the all-integer case is inlined."""
    fields = line.rstrip("\r\n").split(ML1M_SEPARATOR)
    if len(fields) != _RATING_FIELDS:
        raise LineError(
            f"expected {_RATING_FIELDS} fields separated by {ML1M_SEPARATOR!r}, "
            f"got {len(fields)}")
    user, movie, rating, timestamp = fields
    if (user.isdigit() and movie.isdigit() and rating.isdigit() and timestamp.isdigit()
            and line.isascii()):
        return Rating(int(user), int(movie), float(rating), int(timestamp))
    return Rating(
        _parse_uint(user, "UserID"),
        _parse_uint(movie, "MovieID"),
        _parse_rating_value(rating),
        _parse_uint(timestamp, "timestamp"),
    )


def parse_user_line(line: str) -> User:
    """Parse `UserID::Gender::Age::Occupation::Zip-code`; gender and zip code are kept as text."""
    user, gender, age, occupation, zip_code = _split(line, _USER_FIELDS)
    return User(
        _parse_uint(user, "UserID"),
        _require_text(gender, "gender"),
        _parse_uint(age, "age"),
        _parse_uint(occupation, "occupation"),
        _require_text(zip_code, "zip code"),
    )


def parse_year(title: str) -> Optional[int]:
    """The year of a `Title (YYYY)`: the last `(YYYY)` ending the title, else None."""
    end = title.rstrip()
    if len(end) >= 6 and end[-1] == ")" and end[-6] == "(":
        digits = end[-5:-1]
        if digits.isascii() and digits.isdigit():
            return int(digits)
    return None


def parse_movie_line(line: str) -> Movie:
    """Parse `MovieID::Title (Year)::Genre|Genre|...`; the title is kept verbatim."""
    movie, title, genre_field = _split(line, _MOVIE_FIELDS)
    movie_id = _parse_uint(movie, "MovieID")
    _require_text(title, "title")
    if not genre_field:
        raise LineError("no genres")
    genres = tuple(genre_field.split(_GENRE_SEPARATOR))
    if any(is_blank(genre) for genre in genres):
        raise LineError(f"empty genre in {genre_field!r}")
    return Movie(movie_id, title, parse_year(title), genres)


# --- readers -----------------------------------------------------------------------------------

def split_lines(text: str) -> list[str]:
    """Split text on '\\n' only; str.splitlines would also cut at latin-1 '\\x85' and '\\x1c'."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def iter_rating_results(
    lines: Iterable[str], path: str, first_line_number: int = 1,
) -> Iterator[tuple[int, Optional[Rating], Optional[MovieLensFormatError]]]:
    """Yield `(line_number, Rating, None)` or `(line_number, None, error)` per non-blank line."""
    for line_number, line in enumerate(lines, first_line_number):
        if is_blank(line):
            continue
        try:
            yield line_number, parse_rating_line(line), None
        except LineError as error:
            yield line_number, None, MovieLensFormatError(
                path, line_number, line.rstrip("\r\n"), str(error))


def iter_ratings(
    lines: Iterable[str], path: str, first_line_number: int = 1,
) -> Iterator[Rating]:
    """Yield the ratings of the non-blank lines; the first bad line raises MovieLensFormatError."""
    for line_number, line in enumerate(lines, first_line_number):
        if is_blank(line):
            continue
        try:
            yield parse_rating_line(line)
        except LineError as error:
            raise MovieLensFormatError(
                path, line_number, line.rstrip("\r\n"), str(error)) from None


_Record = TypeVar("_Record", User, Movie)


def _read_keyed(ref: FileRef, parse: Callable[[str], _Record], id_name: str
                ) -> dict[int, _Record]:
    """Parse every non-blank line of a side file into a dict keyed by its first field."""
    path = ref.display_name
    records: dict[int, _Record] = {}
    first_seen: dict[int, int] = {}
    for line_number, line in enumerate(split_lines(ref.read_text()), 1):
        if is_blank(line):
            continue
        try:
            record = parse(line)
        except LineError as error:
            raise MovieLensFormatError(
                path, line_number, line.rstrip("\r\n"), str(error)) from None
        key = record[0]
        if key in records:
            raise MovieLensFormatError(
                path, line_number, line.rstrip("\r\n"),
                f"duplicate {id_name} {key} (first on line {first_seen[key]})")
        records[key] = record
        first_seen[key] = line_number
    return records


def read_users(ref: FileRef) -> dict[int, User]:
    """Read a whole users.dat into {UserID: User}; bad lines and duplicate ids raise."""
    return _read_keyed(ref, parse_user_line, "UserID")


def read_movies(ref: FileRef) -> dict[int, Movie]:
    """Read a whole movies.dat into {MovieID: Movie}; bad lines and duplicate ids raise."""
    return _read_keyed(ref, parse_movie_line, "MovieID")


# --- input resolution --------------------------------------------------------------------------

@dataclass(frozen=True)
class FileRef:
    """A file on disk, or the member `member` of the zip archive at `path`."""

    path: str
    member: Optional[str] = None

    @property
    def display_name(self) -> str:
        """`archive.zip!member` for a zip member, else the path: used in error messages."""
        return f"{self.path}!{self.member}" if self.member is not None else self.path

    def open_binary(self) -> IO[bytes]:
        """Open the file (or zip member) for streaming binary reads."""
        if self.member is None:
            return open(self.path, "rb")
        # The member stream keeps the archive's file open after the ZipFile is closed.
        with zipfile.ZipFile(self.path) as archive:
            return archive.open(self.member)

    def read_bytes(self) -> bytes:
        """The whole content as bytes."""
        if self.member is None:
            with open(self.path, "rb") as file:
                return file.read()
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(self.member)

    def read_text(self) -> str:
        """The whole content decoded as latin-1, the MovieLens encoding (never fails)."""
        return self.read_bytes().decode(ML1M_ENCODING)

    def exists(self) -> bool:
        """Whether the file (or the zip and its member) is there."""
        if not os.path.isfile(self.path):
            return False
        if self.member is None:
            return True
        try:
            with zipfile.ZipFile(self.path) as archive:
                archive.getinfo(self.member)
        except (zipfile.BadZipFile, KeyError):
            return False
        return True


@dataclass(frozen=True)
class MovieLensSource:
    """Where the ratings are, and the optional users.dat and movies.dat next to them."""

    ratings: FileRef
    users: Optional[FileRef]
    movies: Optional[FileRef]


def _is_zip_name(path: str) -> bool:
    return path.lower().endswith(".zip")


def _resolve_zip(path: str, ratings_name: str) -> MovieLensSource:
    """Find the ratings member by base name anywhere in the zip, side files in its folder."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not a valid zip archive") from None
    members = set(names)
    candidates = sorted(name for name in names if posixpath.basename(name) == ratings_name)
    if not candidates:
        raise FileNotFoundError(f"{path} has no member named {ratings_name}")
    if len(candidates) > 1:
        raise ValueError(
            f"{path} has several {ratings_name} members ({', '.join(candidates)}); "
            "extract it and pass the one to use")
    ratings = candidates[0]
    folder = posixpath.dirname(ratings)

    def side(name: str) -> Optional[FileRef]:
        member = posixpath.join(folder, name) if folder else name
        return FileRef(path, member) if member in members else None

    return MovieLensSource(FileRef(path, ratings), side(USERS_FILE), side(MOVIES_FILE))


def _resolve_file(ratings_path: str) -> MovieLensSource:
    """A ratings file of any name, with users.dat and movies.dat looked up next to it."""
    folder = os.path.dirname(ratings_path)

    def side(name: str) -> Optional[FileRef]:
        candidate = os.path.join(folder, name)
        return FileRef(candidate) if os.path.isfile(candidate) else None

    return MovieLensSource(FileRef(ratings_path), side(USERS_FILE), side(MOVIES_FILE))


def _resolve_folder(path: str, ratings_name: str) -> MovieLensSource:
    """Ratings directly in the folder, or in exactly one of its immediate subfolders."""
    direct = os.path.join(path, ratings_name)
    if os.path.isfile(direct):
        return _resolve_file(direct)
    candidates = sorted(
        os.path.join(path, entry.name, ratings_name)
        for entry in os.scandir(path)
        if entry.is_dir() and os.path.isfile(os.path.join(path, entry.name, ratings_name)))
    if not candidates:
        raise FileNotFoundError(
            f"no {ratings_name} in {path} nor in a subfolder of it (such as ml-1m/)")
    if len(candidates) > 1:
        raise ValueError(
            f"several {ratings_name} files under {path} ({', '.join(candidates)}); "
            "pass the folder or file to use")
    return _resolve_file(candidates[0])


def resolve_source(path: Union[str, os.PathLike], ratings_name: str = RATINGS_FILE
                   ) -> MovieLensSource:
    """Locate the MovieLens files from a zip, a folder (or its single subfolder) or a ratings file.

    `ratings_name` is the base name looked up in a zip or folder; a file path is used as is.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return _resolve_folder(path, ratings_name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"MovieLens input {path} does not exist")
    if _is_zip_name(path) or zipfile.is_zipfile(path):
        return _resolve_zip(path, ratings_name)
    return _resolve_file(path)


# --- chunking for parallel parsing -------------------------------------------------------------

def count_lines(data: bytes) -> int:
    """Number of lines in `data`, counting a last line without a trailing newline."""
    newlines = data.count(b"\n")
    return newlines + 1 if data and not data.endswith(b"\n") else newlines


def split_into_chunks(data: bytes, target_lines: int) -> list[tuple[int, int, int]]:
    """Cut `data` at newlines into `(start_byte, end_byte, first_line_number)` ranges.

    Each range holds `target_lines` lines (the last one fewer); together they cover `data`
    exactly, so workers parsing ranges report the same 1-based line numbers as one reader.
    """
    if target_lines < 1:
        raise ValueError(f"target_lines must be at least 1, got {target_lines}")
    chunks: list[tuple[int, int, int]] = []
    size = len(data)
    start = 0
    line_number = 1
    while start < size:
        end = start
        lines = 0
        while lines < target_lines:
            newline = data.find(b"\n", end)
            if newline < 0:
                end = size
                lines += 1
                break
            end = newline + 1
            lines += 1
            if end == size:
                break
        chunks.append((start, end, line_number))
        line_number += lines
        start = end
    return chunks
