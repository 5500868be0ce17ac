"""Reading lines of a layout's files: decoding, BOMs, headers, and `file:line` errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, TypeVar, Union

from kiko.data.movielens.files import GZIP_MAGIC, UTF8_BOM, ZIP_MAGIC, FileRef
from kiko.data.movielens.layout import Layout
from kiko.data.movielens.records import (
    LineError, Movie, MovieLensFormatError, Rating, User, csv_fields, is_blank)


class HeaderError(MovieLensFormatError):
    """The first line is not the header the layout expects: the file is not in this layout."""


def check_not_compressed(ref: FileRef) -> None:
    """Refuse a gzip or zip file posing as a text file, before reading it line by line."""
    head = ref.head(4)
    if head.startswith(GZIP_MAGIC):
        raise ValueError(f"{ref.display_name} is gzip-compressed (it starts with the bytes "
                         "1f 8b): decompress it first (gunzip), then pass the result")
    if head.startswith(ZIP_MAGIC):
        raise ValueError(f"{ref.display_name} is a zip archive, not a text file: pass the "
                         "archive itself as the data (a .zip name is read as an archive)")


def check_header(ref: FileRef, header: Optional[str], encoding: str) -> None:
    """HeaderError unless the file's first line (after a BOM) is `header` (when there is one)."""
    if header is None:
        return
    first = next(ref.iter_lines(), b"")
    if first.startswith(UTF8_BOM):
        first = first[len(UTF8_BOM):]
    text = shown(first, encoding)
    if not is_header(text, header):
        raise HeaderError(ref.display_name, 1, text, f"expected the header {header!r}")


def is_header(text: str, header: str) -> bool:
    """True when a line is `header`. Headers are CSV lines (only the ml-csv layout has them), so
    quoted names (`"userId","movieId",...`) are the same header."""
    if text == header:
        return True
    if '"' not in text:
        return False
    names = header.split(",")
    try:
        return csv_fields(text, len(names)) == names
    except LineError:
        return False


def decode(raw: bytes, encoding: str) -> str:
    """A line's text; NUL bytes and bytes invalid in `encoding` are errors, never replaced."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise LineError(f"NUL byte at column {nul + 1} (a binary or corrupted file?)")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise LineError(f"not valid {encoding}: byte 0x{raw[error.start]:02x} at column "
                        f"{error.start + 1}") from None


def shown(raw: bytes, encoding: str) -> str:
    """The line as text for an error message, whatever its bytes."""
    return raw.decode(encoding, "backslashreplace").rstrip("\r")


@dataclass
class LineFacts:
    """What reading lines saw besides records: a BOM, blank lines."""

    bom: bool = False
    blank_lines: int = 0


_Record = TypeVar("_Record", Rating, User, Movie)
# (line number, line text, record or None, error or None)
Result = tuple[int, str, Optional[_Record], Optional[MovieLensFormatError]]


def iter_records(raw_lines: Iterable[bytes], parse: Callable[[str], _Record], encoding: str,
                 path: str, first_line_number: int = 1, header: Optional[str] = None,
                 facts: Optional[LineFacts] = None) -> Iterator[Result]:
    """`(line number, text, record, None)` or `(line number, text, None, error)` per data line.

    Blank lines are counted in `facts` and not yielded.

    Line 1 may start with a UTF-8 byte-order mark (stripped and noted in `facts`) and, when the
    layout has a `header`, must be exactly that header (HeaderError otherwise; not a record).
    """
    facts = facts if facts is not None else LineFacts()
    for line_number, raw in enumerate(raw_lines, first_line_number):
        if line_number == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM):]
            facts.bom = True
        if line_number == 1 and header is not None:
            text = shown(raw, encoding)
            if not is_header(text, header):
                raise HeaderError(path, 1, text, f"expected the header {header!r}")
            continue
        try:
            text = decode(raw, encoding)
        except LineError as error:
            text = shown(raw, encoding)
            yield line_number, text, None, MovieLensFormatError(
                path, line_number, text, str(error))
            continue
        if is_blank(text):
            facts.blank_lines += 1
            continue
        text = text.rstrip("\r")
        try:
            record = parse(text)
        except LineError as error:
            yield line_number, text, None, MovieLensFormatError(
                path, line_number, text, str(error))
            continue
        yield line_number, text, record, None


@dataclass
class SideFile:
    """A whole users or movies file, keyed by id, with what was rejected."""

    ref: FileRef
    records: dict = field(default_factory=dict)
    line_of: dict = field(default_factory=dict)  # id -> line number of its record
    lines_read: int = 0
    rejected: list = field(default_factory=list)  # `file:line: reason: 'line'` strings
    facts: LineFacts = field(default_factory=LineFacts)


def read_side_file(ref: FileRef, layout: Layout, kind: str, skip_malformed: bool) -> SideFile:
    """Stream a users (`kind="users"`) or movies file into {id: record}.

    A malformed line or a repeated id raises MovieLensFormatError, or, with `skip_malformed`,
    is left out and listed in `rejected`.
    """
    parse: Union[Callable[[str], User], Callable[[str], Movie], None] = (
        layout.parse_user if kind == "users" else layout.parse_movie)
    if parse is None:
        raise ValueError(f"layout {layout.name} has no {kind} file")
    check_not_compressed(ref)
    side = SideFile(ref)
    header = layout.movies_header if kind == "movies" else None
    for line_number, text, record, error in iter_records(
            ref.iter_lines(), parse, layout.side_encoding, ref.display_name,
            header=header, facts=side.facts):
        side.lines_read += 1
        if record is not None and record[0] in side.records:
            error = MovieLensFormatError(
                ref.display_name, line_number, text, f"duplicate id {record[0]} (first on "
                f"line {side.line_of[record[0]]})")
            record = None
        if error is not None:
            if not skip_malformed:
                raise error
            side.rejected.append(str(error))
            continue
        side.records[record[0]] = record
        side.line_of[record[0]] = line_number
    return side


def read_ratings(source) -> Iterator[Rating]:
    """Every rating of a data set (a `source.Source`) in file order, streamed; the first bad
    line raises. For tools, tests and benchmarks: the pipeline reads byte ranges in parallel."""
    layout = source.layout
    check_not_compressed(source.ratings)
    for _, _, rating, error in iter_records(
            source.ratings.iter_lines(), layout.parse_rating, layout.ratings_encoding,
            source.ratings.display_name, header=layout.ratings_header):
        if error is not None:
            raise error
        yield rating


def read_side_records(source, kind: str) -> dict:
    """{id: User} or {id: Movie} of a data set's users or movies file ({} without one)."""
    ref = source.users if kind == "users" else source.movies
    return read_side_file(ref, source.layout, kind, skip_malformed=False).records if ref else {}
