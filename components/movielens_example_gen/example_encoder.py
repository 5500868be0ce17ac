"""A fast, deterministic tf.train.Example encoder for MovieLens rows.

ExampleGen assigns each example to a split by hashing its serialized bytes, so the bytes must
not depend on the process: protobuf map order (and tfx_bsl's RecordBatch encoder) vary from run
to run. This writes exactly what `Example.SerializeToString(deterministic=True)` writes (features
sorted by key), and caches the encoded side features of each user and movie so that encoding a
rating costs a few dictionary look-ups; `encode_columns` assembles the same bytes for whole
columns of ratings with NumPy.
"""

import struct
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kiko.model import features as fk
from kiko.data.movielens import Movie, Rating, User

FeatureValue = Union[Sequence[int], Sequence[float], Sequence[bytes]]

_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3
_INT64_MASK = (1 << 64) - 1


def _varint(value: int) -> bytes:
    value &= _INT64_MASK
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint((field_number << 3) | 2) + _varint(len(payload)) + payload


def _encode_feature(kind: int, values: FeatureValue) -> bytes:
    """Serialized `Feature` holding one BytesList / FloatList / Int64List (packed numbers)."""
    if kind == _BYTES_LIST:
        inner = b"".join(_length_delimited(1, v) for v in values)
    elif kind == _FLOAT_LIST:
        inner = _length_delimited(1, struct.pack(f"<{len(values)}f", *values)) if values else b""
    else:
        inner = _length_delimited(1, b"".join(_varint(v) for v in values)) if values else b""
    return _length_delimited(kind, inner)


def encode_entry(key: str, kind: int, values: FeatureValue) -> bytes:
    """One serialized `Features.feature` map entry, ready to be concatenated."""
    entry = _length_delimited(1, key.encode("utf-8")) + _length_delimited(
        2, _encode_feature(kind, values))
    return _length_delimited(1, entry)


def int64_entry(key: str, value: int) -> bytes:
    prefix = _INT64_PREFIX.get(key)
    if prefix is None:
        return encode_entry(key, _INT64_LIST, [value])
    # key prefix is fixed; the value's varint length decides the three nested lengths.
    v = _varint(value)
    n = len(v)
    return prefix[0] + bytes((n + len(prefix[1]) + 5,)) + prefix[1] + bytes(
        (n + 4, 0x1A, n + 2, 0x0A, n)) + v


def _int64_prefix(key: str) -> Tuple[bytes, bytes]:
    encoded_key = _length_delimited(1, key.encode("utf-8"))
    return b"\x0a", encoded_key + b"\x12"


# Single-value int64 entries of short keys: every nested length fits in one byte.
_INT64_PREFIX = {key: _int64_prefix(key) for key in (fk.TIMESTAMP, fk.USER_ID, fk.MOVIE_ID)}


def float_entry(key: str, value: float) -> bytes:
    return encode_entry(key, _FLOAT_LIST, [value])


def bytes_entry(key: str, values: Sequence[bytes]) -> bytes:
    return encode_entry(key, _BYTES_LIST, values)


def user_entries(user: User) -> Dict[str, bytes]:
    """Encoded users.dat side features of one user."""
    return {
        fk.GENDER: bytes_entry(fk.GENDER, [user.gender.encode("utf-8")]),
        fk.AGE: int64_entry(fk.AGE, user.age),
        fk.OCCUPATION: bytes_entry(fk.OCCUPATION, [user.occupation.encode("utf-8")]),
        fk.ZIP_PREFIX: bytes_entry(
            fk.ZIP_PREFIX, [user.zip_code[:fk.ZIP_PREFIX_LENGTH].encode("utf-8")]),
    }


def movie_entries(movie: Movie) -> Dict[str, bytes]:
    """Encoded movies.dat side features of one movie (no `year` entry when the title has none)."""
    entries = {
        fk.TITLE: bytes_entry(fk.TITLE, [movie.title.encode("utf-8")]),
        fk.GENRES: bytes_entry(fk.GENRES, [g.encode("utf-8") for g in movie.genres]),
    }
    if movie.year is not None:
        entries[fk.YEAR] = int64_entry(fk.YEAR, movie.year)
    return entries


# Which side each feature comes from. Deterministic serialization sorts features by key, so in
# key order the features of one side form fixed runs ("segments"); an example is the
# interleaving of its user's, its movie's and its rating's pre-encoded segments.
_SOURCE = {
    fk.USER_ID: "user", fk.GENDER: "user", fk.AGE: "user", fk.OCCUPATION: "user",
    fk.ZIP_PREFIX: "user",
    fk.MOVIE_ID: "movie", fk.TITLE: "movie", fk.YEAR: "movie", fk.GENRES: "movie",
    fk.RATING: "rating", fk.TIMESTAMP: "rating",
}


def _segments() -> List[Tuple[str, Tuple[str, ...]]]:
    segments: List[Tuple[str, List[str]]] = []
    for key in sorted(_SOURCE):
        if segments and segments[-1][0] == _SOURCE[key]:
            segments[-1][1].append(key)
        else:
            segments.append((_SOURCE[key], [key]))
    return [(source, tuple(keys)) for source, keys in segments]


_SEGMENTS = _segments()
_RATING_SEGMENT = next(i for i, (source, _) in enumerate(_SEGMENTS) if source == "rating")
assert _SEGMENTS[_RATING_SEGMENT][1] == (fk.RATING, fk.TIMESTAMP)


def _segment_bytes(entries: Mapping[str, bytes], source: str) -> List[bytes]:
    """The concatenated entries of each segment (empty where `source` does not fill it)."""
    return [b"".join(entries[k] for k in keys if k in entries) if src == source else b""
            for src, keys in _SEGMENTS]


class RatingEncoder:
    """Encodes `Rating`s, joining the side features of users.dat / movies.dat when given.

    A rating whose user (movie) is missing from a given users (movies) file is encoded without
    that side's features; ExampleGen counts them and the schema's presence constraints flag
    them above a threshold.
    """

    def __init__(self, users: Optional[Mapping[int, User]] = None,
                 movies: Optional[Mapping[int, Movie]] = None):
        self._users = users or {}
        self._movies = movies or {}
        self._user_cache: Dict[int, List[bytes]] = {}
        self._movie_cache: Dict[int, List[bytes]] = {}
        self._rating_cache: Dict[float, bytes] = {}

    def _user(self, user_id: int) -> List[bytes]:
        cached = self._user_cache.get(user_id)
        if cached is None:
            entries = {fk.USER_ID: int64_entry(fk.USER_ID, user_id)}
            user = self._users.get(user_id)
            if user is not None:
                entries.update(user_entries(user))
            cached = self._user_cache[user_id] = _segment_bytes(entries, "user")
        return cached

    def _movie(self, movie_id: int) -> List[bytes]:
        cached = self._movie_cache.get(movie_id)
        if cached is None:
            entries = {fk.MOVIE_ID: int64_entry(fk.MOVIE_ID, movie_id)}
            movie = self._movies.get(movie_id)
            if movie is not None:
                entries.update(movie_entries(movie))
            cached = self._movie_cache[movie_id] = _segment_bytes(entries, "movie")
        return cached

    def knows(self, rating: Rating) -> tuple[bool, bool]:
        """Whether the rating's user and movie have side features."""
        return rating.user_id in self._users, rating.movie_id in self._movies

    def encode(self, rating: Rating) -> bytes:
        rating_entry = self._rating_entry(rating.rating)
        parts = [u or m for u, m in zip(self._user(rating.user_id),
                                        self._movie(rating.movie_id))]
        parts[_RATING_SEGMENT] = rating_entry + int64_entry(fk.TIMESTAMP, rating.timestamp)
        features = b"".join(parts)
        return b"\n" + _varint(len(features)) + features

    def known(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """`knows` for columns of ids: whether each user and movie has side features."""
        return (np.isin(user_ids, np.fromiter(self._users, dtype=np.int64, count=len(self._users))),
                np.isin(movie_ids,
                        np.fromiter(self._movies, dtype=np.int64, count=len(self._movies))))

    def encode_columns(self, user_ids: np.ndarray, movie_ids: np.ndarray, ratings: np.ndarray,
                       timestamps: np.ndarray) -> List[bytes]:
        """`encode` of every row of the columns (non-negative ids and timestamps), the same
        bytes, assembled from the cached segments without a Python step per row."""
        examples: List[bytes] = []
        for low in range(0, len(user_ids), _ROWS_PER_BLOCK):
            high = low + _ROWS_PER_BLOCK
            examples.extend(self._encode_block(user_ids[low:high], movie_ids[low:high],
                                               ratings[low:high], timestamps[low:high]))
        return examples

    def _encode_block(self, user_ids, movie_ids, ratings, timestamps) -> List[bytes]:
        users, user_row = np.unique(user_ids, return_inverse=True)
        movies, movie_row = np.unique(movie_ids, return_inverse=True)
        values, rating_row = np.unique(ratings, return_inverse=True)
        user_segments = [self._user(u) for u in users.tolist()]
        movie_segments = [self._movie(m) for m in movies.tolist()]
        rating_entries = pa.array([self._rating_entry(v) for v in values.tolist()], pa.binary())
        # Each row's pieces in output order, as Arrow columns joined in C++.
        pieces = []
        for j, (source, _) in enumerate(_SEGMENTS):
            if source == "rating":
                pieces += [rating_entries.take(rating_row),
                           _binary_array(*_int64_entries(fk.TIMESTAMP, timestamps))]
            elif source == "user":
                pieces.append(pa.array([s[j] for s in user_segments], pa.binary()).take(user_row))
            else:
                pieces.append(pa.array([s[j] for s in movie_segments], pa.binary()).take(
                    movie_row))
        body = pc.binary_join_element_wise(*pieces, b"")
        header = _binary_array(*_rows(*_varints(pc.binary_length(body).to_numpy()), first=0x0A))
        return _byte_strings(pc.binary_join_element_wise(header, body, b""))

    def _rating_entry(self, rating: float) -> bytes:
        entry = self._rating_cache.get(rating)
        if entry is None:
            entry = self._rating_cache[rating] = float_entry(fk.RATING, rating)
        return entry


# Rows encoded at once by encode_columns: bounds the memory of the byte-index arrays.
_ROWS_PER_BLOCK = 1 << 16


def _varints(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Varints of non-negative int64 values: a (rows, width) byte matrix and each row's length."""
    v = values.astype(np.uint64)
    lengths = np.ones(len(v), dtype=np.int64)
    for k in range(1, 10):
        lengths += v >= np.uint64(1 << (7 * k))
    width = int(lengths.max()) if len(v) else 1
    matrix = np.empty((len(v), width), dtype=np.uint8)
    for k in range(width):
        low_bits = ((v >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        matrix[:, k] = low_bits | np.where(k < lengths - 1, 0x80, 0).astype(np.uint8)
    return matrix, lengths


def _rows(matrix: np.ndarray, lengths: np.ndarray, first: Optional[int] = None):
    """The first lengths[i] bytes of each matrix row, concatenated (after the byte `first`,
    when given), and each row's length."""
    if first is not None:
        matrix = np.concatenate([np.full((len(matrix), 1), first, dtype=np.uint8), matrix],
                                axis=1)
        lengths = lengths + 1
    return matrix[np.arange(matrix.shape[1]) < lengths[:, None]], lengths


def _int64_entries(key: str, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """int64_entry(key, v) for every v (non-negative), concatenated, and each entry's length."""
    key_start, key_rest = _INT64_PREFIX[key]
    varints, n = _varints(values)
    fixed = np.concatenate([np.frombuffer(key_start, dtype=np.uint8), [0],
                            np.frombuffer(key_rest, dtype=np.uint8), [0, 0x1A, 0, 0x0A, 0]])
    matrix = np.concatenate([np.tile(fixed.astype(np.uint8), (len(values), 1)), varints], axis=1)
    width = len(fixed)
    matrix[:, len(key_start)] = n + len(key_rest) + 5
    matrix[:, width - 5] = n + 4
    matrix[:, width - 3] = n + 2
    matrix[:, width - 1] = n
    return _rows(matrix, width + n)


def _byte_strings(array: pa.Array) -> List[bytes]:
    """The values of an Arrow binary array (no nulls) as Python bytes."""
    _, offsets, data = array.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[array.offset:array.offset + len(array) + 1]
    joined = data.to_pybytes()
    bounds = bounds.tolist()
    return [joined[start:end] for start, end in zip(bounds[:-1], bounds[1:])]


def _binary_array(data: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """An Arrow binary array of the byte strings `data` holds back to back."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), len(lengths),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])
