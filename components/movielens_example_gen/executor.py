"""Beam executor of MovieLensExampleGen: any MovieLens layout to tf.Examples, streaming.

Per input split, the launcher finds the files and the layout, reads the side files (users,
movies: small) line by line, decompresses a zipped ratings file once into the staging folder,
and cuts the ratings file into byte ranges from its size alone; the workers run the two passes
of passes.py over the ranges. No process reads a whole file, and examples are written by the
workers without a global shuffle (TFX's WriteSplit reshuffles, which makes the DirectRunner
hold every example in memory). The distinct user and movie ids come from the merged counts of
the passes (no pass of their own). After the pipeline the written records are counted per split,
the ids of every input split are written (outputs.IDS_DIR) and the data-quality report
(report.py) is recorded and checked.
"""

import functools
import time
from typing import Any, Dict, List, Union

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from kiko.components._tfx_internal import (
    BaseExampleGenExecutor, examples_utils, generate_output_split_names, write_split)
from kiko.components.movielens_example_gen import outputs, passes, progress, quality, report
from kiko.components.movielens_example_gen.errors import MalformedLineError, malformed_line_message
from kiko.components.movielens_example_gen.inputs import input_name, resolve_pattern
from kiko.components.movielens_example_gen.options import Options
from kiko.data.movielens.files import join, plan_chunks, stage
from kiko.data.movielens.reading import check_header, check_not_compressed, read_side_file
from kiko.model import features as fk

_IDS_STAGING = "ids"  # under an input split's staging folder: that split's distinct ids


def _staging_folder(examples_uri: str, name: str) -> str:
    """The working folder of one input split (removed when the execution ends)."""
    return join(join(examples_uri, outputs.STAGING_DIR), name)


def _write_input_ids(stats: quality.ChunkStats, folder: str) -> None:
    """One input split's distinct user and movie ids (from its merged counts) into `folder`."""
    for feature, counts in ((fk.USER_ID, stats.user_counts), (fk.MOVIE_ID, stats.movie_counts)):
        outputs.write_ids(join(folder, f"{feature}.txt"), counts)


def _write_ids(examples_uri: str, input_config: example_gen_pb2.Input) -> None:
    """The distinct ids over every input split into the artifact's IDS_DIR."""
    for feature in outputs.ID_FEATURES:
        ids = set()
        for split in input_config.splits:
            folder = join(_staging_folder(examples_uri, input_name(split.pattern)), _IDS_STAGING)
            ids.update(outputs.read_ids_file(join(folder, f"{feature}.txt")).tolist())
        outputs.write_ids(outputs.ids_path(examples_uri, feature), ids)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(Union[bytes, tf.train.Example])
def _MovieLensToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                        split_pattern: str, examples_uri: str) -> beam.pvalue.PCollection:
    """Reads one input split's data set (any layout) as tf.Examples; see the module docstring."""
    options = Options.from_exec_properties(exec_properties)
    source = resolve_pattern(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                             split_pattern, options.layout)
    layout = source.layout
    logging.info("MovieLensExampleGen: %s", source.describe())
    name = input_name(split_pattern)
    for ref in source.files:
        check_not_compressed(ref)
    check_header(source.ratings, layout.ratings_header, layout.ratings_encoding)
    users = (read_side_file(source.users, layout, "users", options.skip_malformed)
             if source.users else None)
    movies = (read_side_file(source.movies, layout, "movies", options.skip_malformed)
              if source.movies else None)
    side_rejects = [line for side in (users, movies) if side for line in side.rejected]
    if side_rejects:
        report.write_lines(join(join(examples_uri, outputs.REJECTED_DIR),
                                f"{name}.side_files.txt"), side_rejects)
    staging = _staging_folder(examples_uri, name)
    ratings = stage(source.ratings, staging)
    size = ratings.size()
    bytes_read = size + sum(ref.size() for ref in (source.users, source.movies) if ref)
    chunks = plan_chunks(ratings.path, size, passes.chunk_bytes(size))
    logging.info("MovieLensExampleGen: %s: %d bytes in %d ranges", source.ratings.display_name,
                 size, len(chunks))
    progress_dir = progress.progress_folder(examples_uri, name)
    fileio.makedirs(progress_dir)
    progress.mark(progress_dir, progress.TOTAL, 0, len(chunks))
    quality_dir = join(examples_uri, outputs.QUALITY_DIR)
    report.write_lines(join(quality_dir, f"{name}.source.json"),
                       [report.source_json(split_pattern, source, users, movies, bytes_read)])

    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
                              output_config)
    settings = passes.ParseSettings(
        layout_name=layout.name, path=source.ratings.display_name,
        skip_malformed=options.skip_malformed,
        # TFX partitions by a feature only for tf.Example protos; by bytes otherwise.
        as_proto=output_config.split_config.HasField("partition_feature_name"),
        check_users=users is not None, check_movies=movies is not None, n_chunks=len(chunks),
        progress_dir=progress_dir)

    buckets = passes.duplicate_buckets(size)
    keys_dir = join(staging, passes.KEYS_DIR)
    fileio.makedirs(keys_dir)
    ranges = pipeline | "Ranges" >> beam.Create(chunks, reshuffle=True)
    scanned = ranges | "ScanKeys" >> beam.ParDo(passes.ScanKeys(
        layout.name, settings.path, progress_dir, keys_dir, buckets)).with_outputs(
        passes.LINES_TAG, main="key_files")
    first_lines = (scanned[passes.LINES_TAG] | "CollectLineCounts" >> beam.combiners.ToList()
                   | "FirstLines" >> beam.Map(passes.first_line_numbers))
    # A side input: every range is scanned before any bucket is searched.
    losers = (pipeline | "Buckets" >> beam.Create(range(buckets), reshuffle=True)
              | "FindDuplicates" >> beam.FlatMap(
                  passes.find_duplicates, key_files=beam.pvalue.AsList(scanned["key_files"])))
    parsed = ranges | "Parse" >> beam.ParDo(
        passes.ParseChunk(settings, users.records if users else None,
                          movies.records if movies else None),
        first_lines=beam.pvalue.AsSingleton(first_lines),
        losers=beam.pvalue.AsMultiMap(losers),
    ).with_outputs(passes.REJECTED_TAG, passes.DUPLICATES_TAG, passes.STATS_TAG, main="examples")
    for tag, folder in ((passes.REJECTED_TAG, outputs.REJECTED_DIR),
                        (passes.DUPLICATES_TAG, outputs.DUPLICATES_DIR)):
        _ = parsed[tag] | f"Write{tag.title()}" >> beam.io.WriteToText(
            join(join(examples_uri, folder), f"{name}.txt"), shard_name_template="")
    merged = parsed[passes.STATS_TAG] | "MergeStats" >> beam.CombineGlobally(passes.MergeStats())
    _ = (merged | "StatsJson" >> beam.Map(report.stats_json)
         | "WriteStats" >> beam.io.WriteToText(join(quality_dir, f"{name}.stats.json"),
                                               shard_name_template=""))
    _ = merged | "WriteIds" >> beam.Map(_write_input_ids, join(staging, _IDS_STAGING))
    return parsed["examples"]


@beam.ptransform_fn
def _WriteSplit(examples: beam.pvalue.PCollection, split_uri: str) -> beam.pvalue.PDone:
    """TFX's WriteSplit without its global Reshuffle: each worker writes what it parsed."""
    return (examples
            | "MaybeSerialize" >> beam.ParDo(write_split.MaybeSerialize())
            | "Write" >> beam.io.WriteToTFRecord(
                join(split_uri, write_split.DEFAULT_TF_RECORD_FILE_NAME), file_name_suffix=".gz"))


class Executor(BaseExampleGenExecutor):
    """ExampleGen executor whose input source is MovieLens data in any layout."""

    _examples_uri: str = ""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return functools.partial(_MovieLensToExample, examples_uri=self._examples_uri)

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """BaseExampleGenExecutor.Do with an unshuffled write, then the data checks."""
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        self._examples_uri = examples.uri
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        split_names = generate_output_split_names(input_config, output_config)
        examples.split_names = artifact_utils.encode_split_names(split_names)
        options = Options.from_exec_properties(exec_properties)

        started = time.perf_counter()
        try:
            with progress.ProgressReporter(examples.uri), self._make_beam_pipeline() as pipeline:
                for split, example_split in self.GenerateExamplesByBeam(
                        pipeline, exec_properties).items():
                    _ = example_split | f"WriteSplit[{split}]" >> _WriteSplit(
                        artifact_utils.get_split_uri([examples], split))
            _write_ids(examples.uri, input_config)
        except Exception as error:
            message = malformed_line_message(error)
            if message is None:
                raise
            # The user gets `file:line: reason: 'line'`; Beam's step, the worker's traceback and
            # the original error stay in the chain, which the log shows.
            raise MalformedLineError(message) from error
        finally:
            staging = join(examples.uri, outputs.STAGING_DIR)
            if fileio.exists(staging):
                fileio.rmtree(staging)
        examples_utils.set_payload_format(
            examples, exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY,
                                          example_gen_pb2.FORMAT_TF_EXAMPLE))
        examples_utils.set_file_format(
            examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        written = {split: report.count_records(artifact_utils.get_split_uri([examples], split))
                   for split in split_names}
        data_quality = report.build(examples.uri, input_config, written)
        report.record(examples, data_quality)
        logging.info("MovieLensExampleGen: %d examples (%s) from %d lines in %.1f s; "
                     "%d rejected, %d duplicates dropped", data_quality["examples"],
                     ", ".join(f"{k} {v}" for k, v in written.items()),
                     data_quality["lines_read"], time.perf_counter() - started,
                     data_quality["rejected_lines"],
                     data_quality["duplicates_exact"] + data_quality["duplicates_conflicting"])
        report.check(data_quality, options)
