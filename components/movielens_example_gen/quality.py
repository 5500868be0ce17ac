"""Data-quality accounting of MovieLensExampleGen: pure functions, no Beam.

* Duplicates: ratings of the same user and movie. Policy: the one with the latest timestamp is
  kept (on a tie, the one later in the file); every other is dropped and counted as *exact*
  when its rating and timestamp equal the kept one's, else as *conflicting*.
* Per-chunk statistics (lines read, rejected, duplicates, ratings whose user or movie is missing
  from the side files, the rating histogram, ratings per user and per movie, the extreme value
  of each numeric feature with the line it is on) merge into the report recorded on the
  Examples artifact in ML Metadata.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np

from kiko.model import features as fk

EXACT = "exact"
CONFLICTING = "conflicting"

# Packed key record of one valid rating line, for the duplicate search (40 bytes).
KEY_DTYPE = np.dtype([("user", "<i8"), ("movie", "<i8"), ("timestamp", "<i8"),
                      ("rating", "<f4"), ("chunk", "<i4"), ("line", "<i8")])
# Bin edges of the ratings-per-user and ratings-per-movie histograms (counts >= edge).
COUNT_EDGES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)


def bucket_of(users: np.ndarray, movies: np.ndarray, buckets: int) -> np.ndarray:
    """A bucket per (user, movie): duplicates share one, so buckets are searched separately."""
    mixed = (users.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ movies.astype(np.uint64)
    return (mixed % np.uint64(buckets)).astype(np.int64)


@dataclass(frozen=True)
class Loser:
    """A dropped duplicate (chunk, line within the chunk) and the line kept instead."""

    chunk: int
    line: int
    kind: str
    kept_chunk: int
    kept_line: int


def duplicate_losers(keys: np.ndarray) -> list[Loser]:
    """The dropped duplicates among key records (KEY_DTYPE), by the policy of this module."""
    if len(keys) < 2:
        return []
    order = np.lexsort((keys["line"], keys["chunk"], keys["timestamp"], keys["movie"],
                        keys["user"]))
    keys = keys[order]
    same_pair = (keys["user"][1:] == keys["user"][:-1]) & (keys["movie"][1:] == keys["movie"][:-1])
    if not same_pair.any():
        return []
    # Each group's last record (latest timestamp, then latest position) is the one kept.
    group_start = np.concatenate([[True], ~same_pair])
    group_id = np.cumsum(group_start) - 1
    last = np.concatenate([~same_pair, [True]])
    kept = np.flatnonzero(last)[group_id]
    losers = np.flatnonzero(~last)
    kept_of_loser = kept[losers]
    exact = ((keys["rating"][losers] == keys["rating"][kept_of_loser])
             & (keys["timestamp"][losers] == keys["timestamp"][kept_of_loser]))
    return [Loser(int(keys["chunk"][i]), int(keys["line"][i]), EXACT if is_exact else CONFLICTING,
                  int(keys["chunk"][k]), int(keys["line"][k]))
            for i, k, is_exact in zip(losers.tolist(), kept_of_loser.tolist(), exact.tolist())]


@dataclass
class Extreme:
    """Smallest and largest value of a feature and where each is."""

    low: float
    low_at: str
    high: float
    high_at: str

    def merge(self, other: "Extreme") -> "Extreme":
        low = (self.low, self.low_at) if self.low <= other.low else (other.low, other.low_at)
        high = (self.high, self.high_at) if self.high >= other.high else (
            other.high, other.high_at)
        return Extreme(low[0], low[1], high[0], high[1])


def extreme_of(values: np.ndarray, lines: np.ndarray, path: str) -> Optional[Extreme]:
    """Extreme of `values`; values[i] is on line lines[i] of the file `path`."""
    if not len(values):
        return None
    low, high = int(np.argmin(values)), int(np.argmax(values))
    return Extreme(values[low].item(), f"{path}:{lines[low]}", values[high].item(),
                   f"{path}:{lines[high]}")


@dataclass
class ChunkStats:
    """What one byte range (or several, merged) of a ratings file held."""

    lines_read: int = 0  # non-blank data lines (a header is not counted)
    blank_lines: int = 0
    examples: int = 0
    rejected: int = 0
    duplicates_exact: int = 0
    duplicates_conflicting: int = 0
    without_user: int = 0
    without_movie: int = 0
    bom: bool = False
    column_ranges: int = 0  # ranges parsed whole (columns.py) rather than line by line
    rating_counts: Counter = field(default_factory=Counter)
    user_counts: Counter = field(default_factory=Counter)
    movie_counts: Counter = field(default_factory=Counter)
    extremes: dict = field(default_factory=dict)  # feature -> Extreme

    def add_examples(self, columns: dict, lines: np.ndarray, path: str, user_known: np.ndarray,
                     movie_known: np.ndarray, check_users: bool, check_movies: bool) -> None:
        """Account for the examples of a chunk, given as NumPy columns keyed by feature.

        `lines` holds each example's line number in the ratings file `path`; a missing user
        (movie) is counted only when the data has a users (movies) file.
        """
        n = len(lines)
        self.examples += n
        if not n:
            return
        if check_users:
            self.without_user += int(n - user_known.sum())
        if check_movies:
            self.without_movie += int(n - movie_known.sum())
        for key, counter in ((fk.USER_ID, self.user_counts), (fk.MOVIE_ID, self.movie_counts),
                             (fk.RATING, self.rating_counts)):
            ids, counts = np.unique(columns[key], return_counts=True)
            counter.update(dict(zip(ids.tolist(), counts.tolist())))
        for key, values in columns.items():
            self.add_extreme(key, extreme_of(values, lines, path))

    def add_extreme(self, key: str, extreme: Optional[Extreme]) -> None:
        if extreme is None:
            return
        current = self.extremes.get(key)
        self.extremes[key] = extreme if current is None else current.merge(extreme)

    def merge(self, other: "ChunkStats") -> "ChunkStats":
        for name in ("lines_read", "blank_lines", "examples", "rejected", "duplicates_exact",
                     "duplicates_conflicting", "without_user", "without_movie",
                     "column_ranges"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.bom = self.bom or other.bom
        self.rating_counts.update(other.rating_counts)
        self.user_counts.update(other.user_counts)
        self.movie_counts.update(other.movie_counts)
        for key, extreme in other.extremes.items():
            self.add_extreme(key, extreme)
        return self


def histogram(counts: Iterable[int], edges: tuple = COUNT_EDGES) -> dict:
    """How many of `counts` fall in [edge_i, edge_i+1) for each edge (the last bin is open)."""
    values = np.fromiter(counts, dtype=np.int64)
    bins = np.searchsorted(np.asarray(edges), values, side="right") - 1
    tally = np.bincount(bins[bins >= 0], minlength=len(edges))
    return {"edges": list(edges), "counts": tally.tolist()}


def rating_histogram(counts: Counter) -> dict:
    """{"4.5": n, ...} in rating order."""
    return {f"{rating:g}": int(n) for rating, n in sorted(counts.items())}
