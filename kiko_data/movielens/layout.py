"""What a MovieLens layout is: its files, encodings and line parsers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from kiko.data.movielens.records import Movie, Rating, User


@dataclass(frozen=True)
class Layout:
    """The files of one family of MovieLens releases and how to read their lines.

    Side files are optional in the data; a layout names them when its releases ship them.
    Headers are exact first lines that carry no data (the CSV releases').
    """

    name: str
    releases: str  # the GroupLens releases in this layout, for messages and --help
    ratings_file: str
    users_file: Optional[str]
    movies_file: Optional[str]
    ratings_encoding: str
    side_encoding: str
    parse_rating: Callable[[str], Rating]
    parse_user: Optional[Callable[[str], User]] = None
    parse_movie: Optional[Callable[[str], Movie]] = None
    ratings_header: Optional[str] = None
    movies_header: Optional[str] = None
    # A file only this layout's releases ship, telling it from a layout with the same ratings
    # file name (ML-10M's tags.dat beside ratings.dat).
    marker_file: Optional[str] = None
    # The ratings file's field separator, for parsing whole ranges at once (columns.py).
    ratings_separator: Optional[str] = None

    @property
    def side_files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.users_file, self.movies_file) if f)
