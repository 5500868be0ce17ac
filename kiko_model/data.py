"""Examples in memory: ExampleGen's gzip TFRecords read once into NumPy columns.

The training split is small (~1M ratings), so the Trainer parses it once with tf.data and
`tf.io.parse_example` (~1M examples/s here) instead of TFX's dataset factory, which re-parses
every epoch at ~50k examples/s.
"""

from typing import Dict, List

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from kiko_model import features as fk

Columns = Dict[str, np.ndarray]

# What a missing optional side feature parses to; a column that is all default is absent
# from the data (e.g. no users.dat) and is dropped.
_OPTIONAL_DEFAULTS = {fk.GENDER: b"", fk.ZIP_PREFIX: b"", fk.AGE: 0, fk.OCCUPATION: b"",
                      fk.YEAR: 0, fk.TITLE: b""}
_FEATURE_SPEC = {
    fk.USER_ID: tf.io.FixedLenFeature([], tf.int64),
    fk.MOVIE_ID: tf.io.FixedLenFeature([], tf.int64),
    fk.RATING: tf.io.FixedLenFeature([], tf.float32),
    fk.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    fk.GENDER: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    fk.ZIP_PREFIX: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    fk.AGE: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    fk.OCCUPATION: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    fk.YEAR: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    fk.TITLE: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    fk.GENRES: tf.io.VarLenFeature(tf.string),
}


def _rows_of_tuples(values: np.ndarray, row_lengths: np.ndarray) -> np.ndarray:
    """Ragged bytes values -> object array of one tuple per row; each distinct row built once."""
    offsets = np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int64)
    rows = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values, pa.large_binary()))
    encoded = pc.binary_join(rows, pa.scalar(_SEPARATOR, pa.large_binary())).dictionary_encode()
    table = np.empty(len(encoded.dictionary), dtype=object)
    table[:] = [tuple(key.split(_SEPARATOR)) if key else ()
                for key in encoded.dictionary.to_pylist()]
    return table[encoded.indices.to_numpy(zero_copy_only=False)]


# Joins a row's values to find distinct rows; never part of a genre name.
_SEPARATOR = b"\0"


def load_examples(file_patterns: List[str], batch_size: int = 65536) -> Columns:
    """Every example of the gzip TFRecord files matching `file_patterns`.

    Rows come sorted by (user, movie, timestamp): ExampleGen shuffles examples across files
    differently on every run, and a seeded validation split and training must not depend on
    that order.
    """
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {file_patterns}")
    dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP")
               .batch(batch_size)
               .map(lambda batch: tf.io.parse_example(batch, _FEATURE_SPEC),
                    num_parallel_calls=tf.data.AUTOTUNE))
    chunks: Dict[str, List[np.ndarray]] = {}
    genre_values: List[np.ndarray] = []
    genre_lengths: List[np.ndarray] = []
    for batch in dataset:
        for key, tensor in batch.items():
            if key == fk.GENRES:
                genre_values.append(tensor.values.numpy())
                genre_lengths.append(np.bincount(tensor.indices[:, 0].numpy(),
                                                 minlength=int(tensor.dense_shape[0])))
            else:
                chunks.setdefault(key, []).append(tensor.numpy())
    if not chunks:
        raise ValueError(f"no examples in {files}")
    columns = {key: np.concatenate(parts) for key, parts in chunks.items()}
    for key, default in _OPTIONAL_DEFAULTS.items():
        if np.all(columns[key] == default):
            del columns[key]
        elif columns[key].dtype.kind in "SO":
            columns[key] = columns[key].astype(object)
    lengths = np.concatenate(genre_lengths)
    if lengths.any():
        columns[fk.GENRES] = _rows_of_tuples(np.concatenate(genre_values), lengths)
    order = np.lexsort((columns[fk.RATING], columns[fk.TIMESTAMP], columns[fk.MOVIE_ID],
                        columns[fk.USER_ID]))
    return {key: values[order] for key, values in columns.items()}


def movie_catalog(columns: Columns):
    """The movies of ``columns`` with their title and genres (for the SavedModel's catalog),
    sorted by id; None when the data has no titles."""
    if fk.TITLE not in columns:
        return None
    movie_ids, first = np.unique(columns[fk.MOVIE_ID], return_index=True)
    genres = columns.get(fk.GENRES)
    return {fk.MOVIE_ID: movie_ids,
            fk.TITLE: [columns[fk.TITLE][i].decode("utf-8") for i in first],
            fk.GENRES: [tuple(g.decode("utf-8") for g in genres[i]) if genres is not None
                        else () for i in first]}
