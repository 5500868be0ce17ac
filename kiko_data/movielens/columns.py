"""Whole-range parsing of rating lines with NumPy: the fast path of ingestion.

A range of a ratings file is parsed column-wise only when every one of its lines is the plain
form the per-line parser (`records.rating_parser`) takes on its own fast path: ASCII digits,
exactly four fields separated by the layout's separator, integers of fewer than
int64's digit count, a rating written the MovieLens way ("4", "4.0", "3.5"). Anything else (a
BOM, a blank line, a carriage return, a quote, a bad field) returns None, and the caller parses
the range line by line, so errors keep their exact `file:line: reason`. The values are the ones
the per-line parser gives for the same lines.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from kiko.data.movielens.files import UTF8_BOM
from kiko.data.movielens.records import COMMON_RATINGS, MAX_INT64_DIGITS

_NEWLINE = ord("\n")
_DOT = ord(".")
# Stands in for a separator of several bytes (ML-1M's "::"); a range holding it is not plain.
_STAND_IN = b"\t"
_POW10 = 10 ** np.arange(MAX_INT64_DIGITS - 1, dtype=np.int64)


class RatingColumns(NamedTuple):
    """The ratings of a range as columns; record i is on line `skipped + i` of the range."""

    user_id: np.ndarray  # int64
    movie_id: np.ndarray  # int64
    rating: np.ndarray  # float64, as the per-line parser's Python floats
    timestamp: np.ndarray  # int64
    skipped: int  # lines before the first record (the header, in the file's first range)

    def __len__(self) -> int:
        return len(self.user_id)


def _rating_key(c0, c1, c2):
    return c0.astype(np.int64) | (c1.astype(np.int64) << 8) | (c2.astype(np.int64) << 16)


def _rating_table():
    keys, values = [], []
    for text, value in COMMON_RATINGS.items():
        raw = text.encode("ascii").ljust(3, b"\0")
        keys.append(raw[0] | (raw[1] << 8) | (raw[2] << 16))
        values.append(value)
    order = np.argsort(keys)
    return np.asarray(keys, dtype=np.int64)[order], np.asarray(values, dtype=np.float64)[order]


_RATING_KEYS, _RATING_VALUES = _rating_table()


def _integers(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The decimal integers written at buf[starts[i]:starts[i] + lengths[i]] (digits only)."""
    width = int(lengths.max()) if len(lengths) else 0
    values = np.zeros(len(starts), dtype=np.int64)
    for j in range(width):
        present = j < lengths
        digit = buf[np.minimum(starts + j, len(buf) - 1)].astype(np.int64) - ord("0")
        power = _POW10[np.maximum(lengths - 1 - j, 0)]
        values += np.where(present, digit * power, 0)
    return values


def parse_rating_columns(data: bytes, separator: str, header: Optional[str],
                         at_file_start: bool) -> Optional[RatingColumns]:
    """The ratings of `data` (a range's lines, each ending in a newline except maybe the
    file's last) as columns, or None when any line is not in the plain form."""
    skipped = 0
    if at_file_start:
        if data.startswith(UTF8_BOM):
            return None
        if header is not None:
            head, newline, rest = data.partition(b"\n")
            if head != header.encode("ascii"):
                return None
            data, skipped = rest, 1
    if data and not data.endswith(b"\n"):
        data += b"\n"
    sep = separator.encode("ascii")
    if len(sep) > 1:
        if _STAND_IN in data:
            return None
        data, sep = data.replace(sep, _STAND_IN), _STAND_IN
    buf = np.frombuffer(data, dtype=np.uint8)
    allowed = np.zeros(256, dtype=bool)
    allowed[list(b"0123456789.\n" + sep)] = True
    if not allowed[buf].all():
        return None
    ends = np.flatnonzero((buf == sep[0]) | (buf == _NEWLINE))
    if len(ends) % 4:
        return None
    kinds = buf[ends].reshape(-1, 4)
    if not ((kinds[:, :3] == sep[0]).all() and (kinds[:, 3] == _NEWLINE).all()):
        return None
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    lengths = (ends - starts).reshape(-1, 4)
    starts = starts.reshape(-1, 4)
    integer_lengths = lengths[:, [0, 1, 3]]
    if ((integer_lengths < 1) | (integer_lengths >= MAX_INT64_DIGITS)).any():
        return None
    dots = np.flatnonzero(buf == _DOT)
    if (np.searchsorted(ends, dots) % 4 != 2).any():
        return None  # a dot outside the rating field
    rating_starts, rating_lengths = starts[:, 2], lengths[:, 2]
    if not ((rating_lengths == 1) | (rating_lengths == 3)).all():
        return None
    wide = rating_lengths == 3
    keys = _rating_key(buf[rating_starts], np.where(wide, buf[rating_starts + 1], 0),
                       np.where(wide, buf[np.minimum(rating_starts + 2, len(buf) - 1)], 0))
    at = np.minimum(np.searchsorted(_RATING_KEYS, keys), len(_RATING_KEYS) - 1)
    if (_RATING_KEYS[at] != keys).any():
        return None
    return RatingColumns(
        _integers(buf, starts[:, 0], lengths[:, 0]), _integers(buf, starts[:, 1], lengths[:, 1]),
        _RATING_VALUES[at], _integers(buf, starts[:, 3], lengths[:, 3]), skipped)
