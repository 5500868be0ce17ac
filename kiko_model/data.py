"""Examples in memory: Arrow RecordBatches (from TFX's DataAccessor) to NumPy columns.

The training split is small (~1M ratings), so the Trainer decodes it once, in C++ through
tfx_bsl, instead of re-parsing TFRecords every epoch.
"""

from typing import Callable, Dict, Iterable, Iterator, List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.tfxio import dataset_options

from kiko_model import features as fk

Columns = Dict[str, np.ndarray]
RecordBatchFactory = Callable[[List[str], dataset_options.RecordBatchesOptions,
                               Optional[schema_pb2.Schema]], Iterator[pa.RecordBatch]]

_INT_DEFAULTS = {fk.AGE: 0, fk.OCCUPATION: -1, fk.YEAR: 0}
_SINGLE_INT = (fk.USER_ID, fk.MOVIE_ID, fk.TIMESTAMP, fk.AGE, fk.OCCUPATION, fk.YEAR)
_SINGLE_BYTES = (fk.GENDER, fk.ZIP_PREFIX, fk.TITLE)
_REQUIRED = (fk.USER_ID, fk.MOVIE_ID, fk.RATING)


def _single(column: pa.Array, default, name: str) -> np.ndarray:
    """A list<T> column holding at most one value per row -> T[N] (missing -> default)."""
    lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    if lengths.max(initial=0) > 1:
        raise ValueError(f"feature {name!r} has rows with {lengths.max()} values; expected one")
    values = column.flatten().to_numpy(zero_copy_only=False)
    if len(values) == len(column):
        return values
    out = np.full(len(column), default, dtype=values.dtype if len(values) else object)
    out[lengths == 1] = values
    return out


def _multi(column: pa.Array) -> np.ndarray:
    """A list<bytes> column -> object array of tuples (missing -> empty tuple).

    Rows repeat (genres are per movie): each distinct row is converted once.
    """
    joined = pc.binary_join(column, pa.scalar(_SEPARATOR, pa.large_binary())).fill_null(b"")
    encoded = joined.dictionary_encode()
    distinct = [tuple(v.split(_SEPARATOR)) if v else ()
                for v in encoded.dictionary.to_pylist()]
    table = np.empty(len(distinct), dtype=object)
    table[:] = distinct
    return table[encoded.indices.to_numpy(zero_copy_only=False)]


# Joins a row's values to find distinct rows; cannot occur inside a genre name.
_SEPARATOR = b"\x00"


def record_batches_to_columns(batches: Iterable[pa.RecordBatch]) -> Columns:
    """Concatenates RecordBatches of the ExampleGen features into one NumPy column each."""
    table = pa.Table.from_batches(list(batches))
    if table.num_rows == 0:
        raise ValueError("no examples to read")
    missing = [k for k in _REQUIRED if k not in table.column_names]
    if missing:
        raise ValueError(f"examples lack the required features {missing}")
    columns: Columns = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if name == fk.RATING:
            columns[name] = _single(column, np.nan, name).astype(np.float32)
        elif name in _SINGLE_INT:
            columns[name] = _single(column, _INT_DEFAULTS.get(name, 0), name).astype(np.int64)
        elif name in _SINGLE_BYTES:
            columns[name] = _single(column, b"", name).astype(object)
        elif name == fk.GENRES:
            columns[name] = _multi(column)
    return columns


def load_examples(record_batch_factory: RecordBatchFactory, file_patterns: List[str],
                  schema: Optional[schema_pb2.Schema] = None,
                  batch_size: int = 65536) -> Columns:
    """Reads every example of the files once, in order, into NumPy columns."""
    options = dataset_options.RecordBatchesOptions(
        batch_size=batch_size, num_epochs=1, shuffle=False)
    return record_batches_to_columns(record_batch_factory(file_patterns, options, schema))
