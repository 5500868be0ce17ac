"""Examples in memory: ExampleGen's TFRecords read once into compact NumPy columns.

The Trainer parses every example once with tf.data and `tf.io.parse_example` instead of TFX's
dataset factory, which re-parses every epoch. Types come from the schema
(`schema_as_feature_spec`), never from code. What is kept in memory is what scales:

* one row per rating: user id, movie id (int64), rating (float32) and timestamp (int64);
* one row per user and per movie for the side features (`SideTable`): every side feature,
  single- or multi-valued, int or bytes, becomes a ragged set of category codes per entity
  (int32) into a sorted vocabulary of the values seen. No per-rating Python objects.

Side features are properties of a user or a movie (ExampleGen joins them by id), so the values
of an entity's first example stand for all of its examples. Which entity a feature describes
comes from `features.USER_SIDE_FEATURES` / `MOVIE_SIDE_FEATURES`; schema features in neither
list are ignored (and logged).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import schema_utils
from tfx.utils import io_utils

from kiko.model import features as fk

Columns = Dict[str, np.ndarray]

ROW_FEATURES = (fk.USER_ID, fk.MOVIE_ID, fk.RATING, fk.TIMESTAMP)
_ROW_DTYPES = {fk.USER_ID: np.int64, fk.MOVIE_ID: np.int64, fk.RATING: np.float32,
               fk.TIMESTAMP: np.int64}
_BATCH = 65536


@dataclass(frozen=True)
class Categorical:
    """One side feature of every entity: entity i has codes[row_splits[i]:row_splits[i + 1]],
    indices into ``vocabulary`` (sorted distinct values: int64, or bytes as object)."""

    vocabulary: np.ndarray
    row_splits: np.ndarray  # int64 [n_entities + 1]
    codes: np.ndarray  # int32

    def values_of(self, row: int) -> tuple:
        return tuple(self.vocabulary[self.codes[self.row_splits[row]:self.row_splits[row + 1]]])

    def take(self, rows: np.ndarray) -> "Categorical":
        """The feature of the entities at ``rows`` (in that order)."""
        starts, ends = self.row_splits[rows], self.row_splits[rows + 1]
        lengths = ends - starts
        splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        positions = np.repeat(starts - splits[:-1], lengths) + np.arange(splits[-1])
        return Categorical(self.vocabulary, splits, self.codes[positions])


@dataclass(frozen=True)
class SideTable:
    """Side features of users or of movies, one row per entity id (``ids`` sorted)."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    features: Mapping[str, Categorical] = field(default_factory=dict)

    def aligned(self, ids: np.ndarray) -> "SideTable":
        """The table re-indexed to ``ids`` (sorted); ids without a row get no values."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), max(len(self.ids) - 1, 0))
        found = (self.ids[pos] == ids) if len(self.ids) else np.zeros(len(ids), bool)
        features = {}
        for name, feature in self.features.items():
            taken = feature.take(np.where(found, pos, 0))
            lengths = np.where(found, np.diff(taken.row_splits), 0)
            keep = np.repeat(found, np.diff(taken.row_splits))
            splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            features[name] = Categorical(feature.vocabulary, splits, taken.codes[keep])
        return SideTable(ids, features)


@dataclass(frozen=True)
class Examples:
    """A split in memory: rating rows in canonical order plus user and movie side tables."""

    columns: Columns
    users: SideTable = field(default_factory=SideTable)
    movies: SideTable = field(default_factory=SideTable)

    def __len__(self) -> int:
        return len(self.columns[fk.RATING])


def read_schema(schema_path: str) -> schema_pb2.Schema:
    return io_utils.parse_pbtxt_file(schema_path, schema_pb2.Schema())


def feature_spec(schema: schema_pb2.Schema) -> dict:
    """The parsing spec of the features the Trainer uses, from the schema's types."""
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    missing = [name for name in ROW_FEATURES if name not in spec]
    if missing:
        raise ValueError(f"the schema has no {missing}: every example needs "
                         f"{list(ROW_FEATURES)}")
    known = set(ROW_FEATURES) | set(fk.USER_SIDE_FEATURES) | set(fk.MOVIE_SIDE_FEATURES)
    ignored = sorted(set(spec) - known)
    if ignored:
        logging.info("the Trainer ignores schema features %s (neither user nor movie features)",
                     ignored)
    return {name: value for name, value in spec.items() if name in known}


def side_table(ids: np.ndarray, values: Mapping[str, Sequence[Sequence]]) -> SideTable:
    """A side table from per-entity value lists: ``values[name][i]`` are the values of
    feature ``name`` for entity ``ids[i]`` (empty when it has none). Features without any
    value are dropped (absent from the data)."""
    ids = np.asarray(ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    features = {}
    for name, per_entity in values.items():
        per_entity = [per_entity[i] for i in order]
        lengths = np.array([len(v) for v in per_entity], dtype=np.int64)
        if not lengths.any():
            continue
        flat = [value for entity_values in per_entity for value in entity_values]
        dtype = object if isinstance(flat[0], bytes) else np.int64
        vocabulary, codes = np.unique(np.array(flat, dtype=dtype), return_inverse=True)
        features[name] = Categorical(
            vocabulary, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            codes.astype(np.int32))
    return SideTable(ids[order], features)


class _SideCollector:
    """Keeps the side-feature values of each entity's first example, batch by batch."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.seen: set = set()
        self.ids: List[np.ndarray] = []
        self.values: Dict[str, list] = {name: [] for name in self.names}

    def add(self, ids: np.ndarray, batch: Mapping[str, tf.SparseTensor]) -> None:
        """Record the entities of ``ids`` not seen before; ``batch`` holds their features."""
        if not self.names:
            return
        unique, first = np.unique(ids, return_index=True)
        new = np.fromiter((i not in self.seen for i in unique.tolist()), bool, len(unique))
        if not new.any():
            return
        rows = first[new]
        self.seen.update(unique[new].tolist())
        self.ids.append(unique[new])
        position = {row: i for i, row in enumerate(rows.tolist())}
        for name in self.names:
            sparse = batch[name]
            row_of_value = sparse.indices[:, 0].numpy()
            take = np.isin(row_of_value, rows)
            per_entity: list = [[] for _ in rows]
            values = tf.boolean_mask(sparse.values, take).numpy().tolist()
            for owner, value in zip(row_of_value[take].tolist(), values):
                per_entity[position[owner]].append(value)
            self.values[name].extend(per_entity)

    def table(self) -> SideTable:
        if not self.ids:
            return SideTable()
        return side_table(np.concatenate(self.ids), self.values)


def load_examples(file_patterns: List[str], schema: schema_pb2.Schema) -> Examples:
    """Every example of the gzip TFRecord files matching ``file_patterns``.

    Rows come sorted by (user, movie, timestamp, rating): ExampleGen shuffles examples across
    files differently on every run, and a seeded validation split and training must not
    depend on that order. An example without exactly one value of a row feature fails with
    the file pattern and the feature named.
    """
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {file_patterns}")
    spec = feature_spec(schema)
    user_names = [n for n in fk.USER_SIDE_FEATURES if n in spec]
    movie_names = [n for n in fk.MOVIE_SIDE_FEATURES if n in spec]
    users, movies = _SideCollector(user_names), _SideCollector(movie_names)
    dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP")
               .batch(_BATCH)
               .map(lambda batch: tf.io.parse_example(batch, spec),
                    num_parallel_calls=tf.data.AUTOTUNE))
    chunks: Dict[str, List[np.ndarray]] = {name: [] for name in ROW_FEATURES}
    for batch in dataset:
        rows = {name: _one_per_row(batch[name], name, file_patterns) for name in ROW_FEATURES}
        for name in ROW_FEATURES:
            chunks[name].append(rows[name].astype(_ROW_DTYPES[name], copy=False))
        users.add(rows[fk.USER_ID], batch)
        movies.add(rows[fk.MOVIE_ID], batch)
    if not chunks[fk.RATING]:
        raise ValueError(f"no examples in {files}")
    # One column at a time, freeing its chunks: peak memory stays near one copy of the rows.
    columns = {name: np.concatenate(chunks.pop(name)) for name in ROW_FEATURES}
    return in_canonical_order(Examples(columns, users.table(), movies.table()))


def in_canonical_order(examples: Examples) -> Examples:
    """The rows sorted by (user, movie, timestamp, rating): whatever order they came in, the
    same data gives the same seeded validation split and training."""
    columns = examples.columns
    return take_rows(examples, np.lexsort((columns[fk.RATING], columns[fk.TIMESTAMP],
                                           columns[fk.MOVIE_ID], columns[fk.USER_ID])))


def _one_per_row(sparse: tf.SparseTensor, name: str, where) -> np.ndarray:
    rows = sparse.indices[:, 0].numpy()
    n = int(sparse.dense_shape[0])
    if len(rows) != n or (n and not np.array_equal(rows, np.arange(n))):
        counts = np.bincount(rows, minlength=n)
        bad = int(np.flatnonzero(counts != 1)[0])
        raise ValueError(f"{where}: an example has {counts[bad]} values of {name!r}; every "
                         "example needs exactly one")
    return sparse.values.numpy()


def take_rows(examples: Examples, rows: np.ndarray) -> Examples:
    """The examples at ``rows`` (side tables shared)."""
    return dataclasses.replace(examples, columns={k: v[rows] for k, v in
                                                  examples.columns.items()})


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: uint64 -> well-spread uint64 (wrapping arithmetic)."""
    z = values + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def validation_mask(columns: Mapping[str, np.ndarray], fraction: float, seed: int) -> np.ndarray:
    """Whether each rating is in the validation part: a seeded hash of (user, movie,
    timestamp) below ``fraction``. A rating's side depends on that rating alone, so it stays
    on the same side whatever else the data holds: a model warm-started from one trained on an
    earlier window never saw the validation ratings of a later one."""
    key = np.full(len(columns[fk.RATING]), np.uint64(seed), dtype=np.uint64)
    for name in (fk.USER_ID, fk.MOVIE_ID, fk.TIMESTAMP):
        key = _mix(key ^ np.asarray(columns[name]).astype(np.int64).view(np.uint64))
    return (key >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 < fraction


def split_validation(examples: Examples, fraction: float, seed: int):
    """A seeded (fit, validation) partition with about ``fraction`` of the rows in
    validation, each rating's side fixed by `validation_mask`."""
    mask = validation_mask(examples.columns, fraction, seed)
    return take_rows(examples, np.flatnonzero(~mask)), take_rows(examples, np.flatnonzero(mask))


def from_columns(columns: Mapping[str, object]) -> Examples:
    """Examples from per-rating columns (tests, benchmarks): side features given per rating
    (a scalar, or a sequence for a multi-valued feature) become side tables."""
    rows = {name: np.asarray(columns[name], dtype=_ROW_DTYPES[name]) for name in ROW_FEATURES
            if name in columns}
    rows.setdefault(fk.TIMESTAMP, np.zeros(len(rows[fk.RATING]), np.int64))

    def table(id_key: str, names: Sequence[str]) -> SideTable:
        ids, first = np.unique(rows[id_key], return_index=True)
        return side_table(ids, {name: [_as_list(columns[name][i]) for i in first]
                                for name in names if name in columns})

    return in_canonical_order(Examples(rows, table(fk.USER_ID, fk.USER_SIDE_FEATURES),
                                       table(fk.MOVIE_ID, fk.MOVIE_SIDE_FEATURES)))


def _as_list(value) -> list:
    if isinstance(value, (tuple, list, np.ndarray)):
        return list(value)
    return [] if value is None else [value]


def movie_catalog(examples: Examples) -> Optional[dict]:
    """The movies of ``examples`` with title and genres (the SavedModel's catalog), sorted by
    id; None when the data has no titles."""
    movies = examples.movies
    if fk.TITLE not in movies.features:
        return None
    movie_ids = np.unique(examples.columns[fk.MOVIE_ID])
    table = movies.aligned(movie_ids)
    titles = table.features[fk.TITLE]
    genres = table.features.get(fk.GENRES)
    return {fk.MOVIE_ID: movie_ids,
            fk.TITLE: [b"".join(titles.values_of(i)).decode("utf-8")
                       for i in range(len(movie_ids))],
            fk.GENRES: [tuple(g.decode("utf-8") for g in genres.values_of(i))
                        if genres is not None else () for i in range(len(movie_ids))]}
