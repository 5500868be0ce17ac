"""Beam executor of MovieLensExampleGen: MovieLens ratings (+ side files) to tf.Examples."""

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components._tfx_internal import BaseExampleGenExecutor
from components.movielens_example_gen import spec
from components.movielens_example_gen.example_encoder import RatingEncoder
from components.movielens_example_gen.options import MALFORMED_SKIP
from kiko_model import features as fk
from kiko_data import movielens
from kiko_data.movielens import FileRef, Movie, User

# Lines per unit of parallel work: ~20 units for ML-1M, enough to keep every worker busy.
CHUNK_LINES = 50_000
REJECTED_TAG = "rejected"
_OUTPUT_URI = "_kiko_examples_uri"

Chunk = Tuple[FileRef, int, int, int]


class MalformedLineError(ValueError):
    """A malformed ratings line: `file:line: reason: 'line'`."""


class _ParseRatings(beam.DoFn):
    """Parses a byte range of a ratings file into serialized tf.Examples.

    Malformed lines fail the run with `file:line: reason`, or, when `skip_malformed`, go to
    the REJECTED_TAG output (one `file:line: reason: 'line'` string each) and are counted.
    """

    def __init__(self, users: Optional[Mapping[int, User]], movies: Optional[Mapping[int, Movie]],
                 skip_malformed: bool, as_proto: bool):
        self._users = users
        self._movies = movies
        self._skip_malformed = skip_malformed
        self._as_proto = as_proto
        self._encoder: Optional[RatingEncoder] = None
        self._content: Dict[FileRef, bytes] = {}
        self._examples = beam.metrics.Metrics.counter(fk.EXAMPLE_GEN_ID, "examples")
        self._rejected = beam.metrics.Metrics.counter(fk.EXAMPLE_GEN_ID, "rejected_lines")

    def setup(self):
        self._encoder = RatingEncoder(self._users, self._movies)

    def _read(self, ref: FileRef) -> bytes:
        if ref not in self._content:
            self._content = {ref: ref.read_bytes()}
        return self._content[ref]

    def process(self, chunk: Chunk):  # yields bytes or Examples, and TaggedOutput rejects
        ref, start, end, first_line = chunk
        text = self._read(ref)[start:end].decode(fk.ML1M_ENCODING)
        encode = self._encoder.encode
        examples = rejected = 0
        for _, rating, error in movielens.iter_rating_results(
                movielens.split_lines(text), ref.display_name, first_line):
            if error is not None:
                if not self._skip_malformed:
                    # One-argument error: Beam rebuilds errors from args[0] to add the step.
                    raise MalformedLineError(str(error))
                rejected += 1
                yield beam.pvalue.TaggedOutput(REJECTED_TAG, str(error))
                continue
            examples += 1
            serialized = encode(rating)
            yield tf.train.Example.FromString(serialized) if self._as_proto else serialized
        self._examples.inc(examples)
        self._rejected.inc(rejected)


def _rejected_path(examples_uri: str, split_pattern: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in split_pattern)
    return os.path.join(examples_uri, spec.REJECTED_DIR, f"{safe}.txt")


def _resolve_pattern(input_base: str, split_pattern: str) -> movielens.MovieLensSource:
    matches = sorted(fileio.glob(os.path.join(input_base, split_pattern)))
    if len(matches) != 1:
        raise ValueError(
            f"split pattern {split_pattern!r} under {input_base} must match exactly one "
            f"ratings file or zip, matched {len(matches)}: {matches[:5]}")
    return movielens.resolve_source(matches[0])


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(Union[bytes, tf.train.Example])
def _MovieLensToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                        split_pattern: str) -> beam.pvalue.PCollection:
    """Reads one split's ratings (joining users.dat / movies.dat when present) as tf.Examples."""
    source = _resolve_pattern(
        exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    users = movielens.read_users(source.users) if source.users else None
    movies = movielens.read_movies(source.movies) if source.movies else None
    logging.info("MovieLens input: ratings %s, users %s, movies %s",
                 source.ratings.display_name,
                 source.users.display_name if source.users else "(none)",
                 source.movies.display_name if source.movies else "(none)")
    chunks = [(source.ratings, start, end, first_line) for start, end, first_line in
              movielens.split_into_chunks(source.ratings.read_bytes(), CHUNK_LINES)]

    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
                              output_config)
    # TFX partitions by a feature only for tf.Example protos; by bytes otherwise.
    as_proto = output_config.split_config.HasField("partition_feature_name")
    skip = exec_properties[spec.MALFORMED_LINES_KEY] == MALFORMED_SKIP

    parsed = (pipeline
              | "Chunks" >> beam.Create(chunks, reshuffle=True)
              | "Parse" >> beam.ParDo(_ParseRatings(users, movies, skip, as_proto))
              .with_outputs(REJECTED_TAG, main="examples"))
    if skip:
        _ = (parsed[REJECTED_TAG]
             | "WriteRejected" >> beam.io.WriteToText(
                 _rejected_path(exec_properties[_OUTPUT_URI], split_pattern),
                 shard_name_template=""))
    return parsed["examples"]


class Executor(BaseExampleGenExecutor):
    """Generic ExampleGen executor whose input source is MovieLens-format rating files."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _MovieLensToExample

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        exec_properties = dict(exec_properties, **{_OUTPUT_URI: examples.uri})
        super().Do(input_dict, output_dict, exec_properties)

        rejected_dir = os.path.join(examples.uri, spec.REJECTED_DIR)
        rejected = 0
        if fileio.exists(rejected_dir):
            for name in fileio.listdir(rejected_dir):
                with fileio.open(os.path.join(rejected_dir, name), "r") as f:
                    rejected += sum(1 for _ in f)
        examples.set_int_custom_property(spec.REJECTED_LINES_PROPERTY, rejected)
        if rejected:
            logging.warning("MovieLensExampleGen skipped %d malformed line(s); they are in %s",
                            rejected, rejected_dir)
