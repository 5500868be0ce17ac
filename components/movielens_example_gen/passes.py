"""The two Beam passes of MovieLensExampleGen over the byte ranges of one ratings file.

1. Per range (ScanKeys): count the lines, for exact line numbers, and write the packed keys of
   the valid ratings (quality.KEY_DTYPE) to a key file in the staging folder, ordered by bucket
   of (user, movie). Then per bucket (find_duplicates): read the bucket's slice of every key file
   and search it (quality.duplicate_losers); only the duplicates travel on. The keys do not go
   through a GroupByKey: the DirectRunner holds a shuffle's data in its runner process and
   copies it.
2. Per range (ParseChunk): parse and encode every line, naming `file:line` on errors, dropping
   and listing the duplicates, counting what it saw (quality.ChunkStats).

Both passes first try to parse the range whole (kiko.data.movielens.columns); a range with any
line that is not in the plain form is parsed line by line, which names the bad lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging
from tfx.dsl.io import fileio

from kiko.components.movielens_example_gen import progress, quality
from kiko.components.movielens_example_gen.errors import MalformedLineError
from kiko.components.movielens_example_gen.example_encoder import RatingEncoder
from kiko.data.movielens import get_layout
from kiko.data.movielens.columns import RatingColumns, parse_rating_columns
from kiko.data.movielens.files import Chunk, join, read_chunk_bytes, split_lines
from kiko.data.movielens.layout import Layout
from kiko.data.movielens.reading import HeaderError, LineFacts, iter_records
from kiko.model import features as fk

# Tagged outputs.
REJECTED_TAG = "rejected"
DUPLICATES_TAG = "duplicates"
STATS_TAG = "stats"
LINES_TAG = "lines"

# A range is the unit of parallel work: about CHUNKS_PER_FILE per file, each within
# [MIN_CHUNK_BYTES, MAX_CHUNK_BYTES], small enough that its progress mark comes often.
MIN_CHUNK_BYTES = 256 << 10
MAX_CHUNK_BYTES = 8 << 20
CHUNKS_PER_FILE = 32
# Ratings text per bucket of the duplicate search: bounds the keys one search holds in memory.
BUCKET_TEXT_BYTES = 32 << 20
MAX_BUCKETS = 1024
KEYS_DIR = "_keys"  # under the input split's staging folder


def chunk_bytes(size: int) -> int:
    """Bytes per range of a ratings file of `size` bytes."""
    return min(MAX_CHUNK_BYTES, max(MIN_CHUNK_BYTES, size // CHUNKS_PER_FILE))


def duplicate_buckets(size: int) -> int:
    """Buckets of the duplicate search for a ratings file of `size` bytes: one per
    BUCKET_TEXT_BYTES of text, so a bucket's keys stay bounded whatever the file's size."""
    return min(MAX_BUCKETS, max(1, -(-size // BUCKET_TEXT_BYTES)))


def one_argument_errors(records):
    """The records, a header error re-raised as MalformedLineError (Beam rebuilds exceptions
    from args[0] to add the step's name, which garbles a MovieLensFormatError's fields)."""
    try:
        yield from records
    except HeaderError as error:
        raise MalformedLineError(str(error)) from None


def plain_columns(layout: Layout, data: bytes, at_file_start: bool) -> Optional[RatingColumns]:
    """The range's ratings parsed whole, or None when it must be read line by line."""
    if layout.ratings_separator is None:
        return None
    return parse_rating_columns(data, layout.ratings_separator, layout.ratings_header,
                                at_file_start)


# --- pass 1: line counts and duplicate keys ------------------------------------------------

def _numbering_base(chunk: Chunk) -> int:
    """Line numbers of pass 1 are relative to the range; line 1 (BOM, header) only at 0."""
    return 1 if chunk.start == 0 else 2


class KeyFile(NamedTuple):
    """Pass 1's keys of one range: records [offsets[b], offsets[b + 1]) are bucket b's."""

    chunk: int
    path: str
    offsets: Tuple[int, ...]


class ScanKeys(beam.DoFn):
    """Counts the range's lines (LINES_TAG) and writes the keys of its valid ratings, ordered
    by bucket (the main output: a KeyFile)."""

    def __init__(self, layout_name: str, path: str, progress_dir: str, keys_dir: str,
                 buckets: int):
        self._layout_name = layout_name
        self._path = path
        self._progress_dir = progress_dir
        self._keys_dir = keys_dir
        self._buckets = buckets

    def process(self, chunk: Chunk):
        layout = get_layout(self._layout_name)
        data = read_chunk_bytes(chunk)
        columns = plain_columns(layout, data, chunk.start == 0)
        if columns is not None:
            n_lines = columns.skipped + len(columns)
            packed = np.empty(len(columns), dtype=quality.KEY_DTYPE)
            packed["user"], packed["movie"] = columns.user_id, columns.movie_id
            packed["timestamp"], packed["rating"] = columns.timestamp, columns.rating
            packed["chunk"] = chunk.index
            packed["line"] = np.arange(columns.skipped, n_lines)
        else:
            lines = split_lines(data)
            n_lines = len(lines)
            packed = self._line_keys(layout, lines, chunk)
        del data
        yield beam.pvalue.TaggedOutput(LINES_TAG, (chunk.index, n_lines))
        if len(packed):
            bucket = quality.bucket_of(packed["user"], packed["movie"], self._buckets)
            order = np.argsort(bucket, kind="stable")
            offsets = np.concatenate([[0], np.cumsum(np.bincount(bucket,
                                                                 minlength=self._buckets))])
            path = join(self._keys_dir, f"{chunk.index:06d}.keys")
            with fileio.open(path, "wb") as f:  # rewritten whole if Beam retries the range
                f.write(packed[order].tobytes())
            yield KeyFile(chunk.index, path, tuple(offsets.tolist()))
        progress.mark(self._progress_dir, progress.SCANNED, chunk.index, n_lines)

    def _line_keys(self, layout: Layout, lines: List[bytes], chunk: Chunk) -> np.ndarray:
        """The keys of the range's valid ratings, parsed line by line."""
        base = _numbering_base(chunk)
        keys = []
        for line_number, _, rating, _ in one_argument_errors(iter_records(
                lines, layout.parse_rating, layout.ratings_encoding, self._path, base,
                header=layout.ratings_header)):
            if rating is not None:
                keys.append((rating.user_id, rating.movie_id, rating.timestamp, rating.rating,
                             chunk.index, line_number - base))
        return np.array(keys, dtype=quality.KEY_DTYPE)


def find_duplicates(bucket: int, key_files: List[KeyFile]):
    """(chunk, quality.Loser) for the duplicates among one bucket's keys, read from every
    range's key file."""
    size = quality.KEY_DTYPE.itemsize
    parts = []
    for key_file in key_files:
        low, high = key_file.offsets[bucket], key_file.offsets[bucket + 1]
        if high > low:
            with fileio.open(key_file.path, "rb") as f:
                f.seek(low * size)
                parts.append(np.frombuffer(f.read((high - low) * size), dtype=quality.KEY_DTYPE))
    if not parts:
        return
    for loser in quality.duplicate_losers(np.concatenate(parts)):
        yield loser.chunk, loser


def first_line_numbers(counts: List[tuple]) -> Dict[int, int]:
    """Chunk index -> line number of its first line, from (index, number of lines) pairs."""
    first, line = {}, 1
    for index, n in sorted(counts):
        first[index] = line
        line += n
    return first


# --- pass 2: examples -------------------------------------------------------------------------

@dataclass(frozen=True)
class ParseSettings:
    layout_name: str
    path: str  # of the original ratings file (archive!member for a zip), for messages
    skip_malformed: bool
    as_proto: bool
    check_users: bool
    check_movies: bool
    n_chunks: int
    progress_dir: str  # each finished range leaves a mark there (see progress.py)


class ParseChunk(beam.DoFn):
    """Parses a byte range into serialized tf.Examples, counting what it sees.

    Malformed lines fail the run with `file:line: reason`, or, when skipping, go to the
    REJECTED_TAG output and are counted; duplicates found by pass 1 go to DUPLICATES_TAG; the
    range's statistics go to STATS_TAG.
    """

    def __init__(self, settings: ParseSettings, users: Optional[Mapping],
                 movies: Optional[Mapping]):
        self._settings = settings
        self._users = users
        self._movies = movies
        self._encoder: Optional[RatingEncoder] = None

    def setup(self):
        self._encoder = RatingEncoder(self._users, self._movies)

    def process(self, chunk: Chunk, first_lines: Dict[int, int], losers):
        started = time.perf_counter()
        s = self._settings
        layout = get_layout(s.layout_name)
        first = first_lines[chunk.index]
        dropped = {loser.line: loser for loser in losers[chunk.index]}
        stats = quality.ChunkStats()
        data = read_chunk_bytes(chunk)
        plain = plain_columns(layout, data, first == 1)
        if plain is not None:
            stats.column_ranges = 1
            yield from self._columns(plain, data, first, first_lines, dropped, stats)
        else:
            yield from self._lines(split_lines(data), first, first_lines, dropped, stats)
        del data
        logging.info("MovieLensExampleGen: range %d/%d of %s (lines %d-%d, %s): %d examples, "
                     "%d rejected, %d duplicates in %.1f s", chunk.index + 1, s.n_chunks, s.path,
                     first, first + max(stats.lines_read + stats.blank_lines, 1) - 1,
                     "parsed whole" if plain is not None else "line by line",
                     stats.examples, stats.rejected,
                     stats.duplicates_exact + stats.duplicates_conflicting,
                     time.perf_counter() - started)
        progress.mark(s.progress_dir, progress.PARSED, chunk.index, stats.examples)
        yield beam.pvalue.TaggedOutput(STATS_TAG, stats)

    def _duplicate(self, loser, line_number: int, first_lines, user_id: int, movie_id: int,
                   text: str, stats: quality.ChunkStats) -> str:
        """Counts a dropped duplicate and returns its DUPLICATES_TAG line."""
        if loser.kind == quality.EXACT:
            stats.duplicates_exact += 1
        else:
            stats.duplicates_conflicting += 1
        kept = first_lines[loser.kept_chunk] + loser.kept_line
        return (f"{self._settings.path}:{line_number}: {loser.kind} duplicate of line {kept} "
                f"(user {user_id}, movie {movie_id}); line {kept} is kept: {text!r}")

    def _columns(self, plain: RatingColumns, data: bytes, first: int, first_lines, dropped,
                 stats: quality.ChunkStats):
        """The range's examples from its columns (every line is a plain rating)."""
        s = self._settings
        n = len(plain)
        stats.lines_read = n
        relative = np.arange(plain.skipped, plain.skipped + n)
        keep = np.ones(n, dtype=bool)
        if dropped:
            lines = split_lines(data)
            encoding = get_layout(s.layout_name).ratings_encoding
            for line in sorted(dropped):
                i = line - plain.skipped
                keep[i] = False
                yield beam.pvalue.TaggedOutput(DUPLICATES_TAG, self._duplicate(
                    dropped[line], first + line, first_lines, int(plain.user_id[i]),
                    int(plain.movie_id[i]), lines[line].decode(encoding), stats))
        columns = {fk.USER_ID: plain.user_id[keep], fk.MOVIE_ID: plain.movie_id[keep],
                   fk.RATING: plain.rating[keep], fk.TIMESTAMP: plain.timestamp[keep]}
        user_known, movie_known = self._encoder.known(columns[fk.USER_ID],
                                                      columns[fk.MOVIE_ID])
        serialized = self._encoder.encode_columns(*columns.values())
        if s.as_proto:
            yield from (tf.train.Example.FromString(example) for example in serialized)
        else:
            yield from serialized
        stats.add_examples(columns, first + relative[keep], s.path, user_known, movie_known,
                           s.check_users, s.check_movies)

    def _lines(self, lines: List[bytes], first: int, first_lines, dropped,
               stats: quality.ChunkStats):
        """The range's examples parsed line by line, naming `file:line` on errors."""
        s = self._settings
        layout = get_layout(s.layout_name)
        facts = LineFacts()
        encode, knows = self._encoder.encode, self._encoder.knows
        columns: Dict[str, list] = {fk.USER_ID: [], fk.MOVIE_ID: [], fk.RATING: [],
                                    fk.TIMESTAMP: []}
        line_numbers, user_known, movie_known = [], [], []
        records = iter_records(lines, layout.parse_rating, layout.ratings_encoding, s.path,
                               first, header=layout.ratings_header, facts=facts)
        for line_number, text, rating, error in one_argument_errors(records):
            stats.lines_read += 1
            if error is not None:
                if not s.skip_malformed:
                    raise MalformedLineError(str(error))
                stats.rejected += 1
                yield beam.pvalue.TaggedOutput(REJECTED_TAG, str(error))
                continue
            loser = dropped.get(line_number - first)
            if loser is not None:
                yield beam.pvalue.TaggedOutput(DUPLICATES_TAG, self._duplicate(
                    loser, line_number, first_lines, rating.user_id, rating.movie_id, text,
                    stats))
                continue
            for key, value in zip(columns, rating):
                columns[key].append(value)
            line_numbers.append(line_number)
            has_user, has_movie = knows(rating)
            user_known.append(has_user)
            movie_known.append(has_movie)
            serialized = encode(rating)
            yield tf.train.Example.FromString(serialized) if s.as_proto else serialized
        stats.blank_lines, stats.bom = facts.blank_lines, facts.bom
        stats.add_examples({key: np.asarray(values) for key, values in columns.items()},
                           np.asarray(line_numbers, dtype=np.int64), s.path,
                           np.asarray(user_known, dtype=bool), np.asarray(movie_known, dtype=bool),
                           s.check_users, s.check_movies)


class MergeStats(beam.CombineFn):
    """The ranges' quality.ChunkStats merged into one."""

    def create_accumulator(self):
        return quality.ChunkStats()

    def add_input(self, accumulator, stats):
        return accumulator.merge(stats)

    def merge_accumulators(self, accumulators):
        merged = quality.ChunkStats()
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator
