"""MovieLensExampleGen: a FileBasedExampleGen for MovieLens data in any of its layouts."""

import os
from typing import Mapping, NamedTuple, Optional, Tuple

from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2, range_config_pb2

from kiko.components._tfx_internal import BeamExecutorSpec, FileBasedExampleGen
from kiko.components.movielens_example_gen import driver, executor
from kiko.components.movielens_example_gen.inputs import (
    WHOLE_INPUT_BASE, SpanNotFoundError, resolve_span)
from kiko.components.movielens_example_gen.options import (
    PARTITION_BY_RATING, PARTITION_BY_USER, PARTITION_CHOICES, Options)
from kiko.data.movielens import AUTO, files, spans
from kiko.data.movielens.source import Source, resolve_source
from kiko.model import features as fk


def make_output_config(split_buckets: Optional[Mapping[str, int]] = None,
                       partition_by: str = PARTITION_BY_RATING) -> example_gen_pb2.Output:
    """Hash-bucket splits (default train 9 : eval 1), per rating or per user.

    Per rating, an example's split is a hash of its deterministic serialized bytes; per user,
    of its user id, so that all of a user's ratings land in one split.
    """
    split_buckets = dict(split_buckets or {fk.TRAIN_SPLIT: 9, fk.EVAL_SPLIT: 1})
    if not split_buckets or any(int(b) < 1 for b in split_buckets.values()):
        raise ValueError(f"split buckets must be positive integers, got {split_buckets}")
    if partition_by not in PARTITION_CHOICES:
        raise ValueError(f"partition_by must be one of {PARTITION_CHOICES}, got {partition_by!r}")
    split_config = example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=int(buckets))
        for name, buckets in split_buckets.items()])
    if partition_by == PARTITION_BY_USER:
        split_config.partition_feature_name = fk.USER_ID
    return example_gen_pb2.Output(split_config=split_config)


def make_input_config(patterns: Mapping[str, str]) -> example_gen_pb2.Input:
    """Input splits by name -> file pattern under input_base, e.g. predefined train/eval files."""
    return example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=name, pattern=pattern)
        for name, pattern in patterns.items()])


class MovieLensExampleGen(FileBasedExampleGen):
    """Ingests MovieLens data (any release's layout; zip, folder or ratings file) into split
    gzip TFRecords, with a data-quality report on the Examples artifact.

    `input_base` is the folder holding the input; each input split's pattern names one zip,
    folder or ratings file in it, "." (the default) input_base itself (the side files of its
    layout are joined when present). A pattern may hold TFX's `{SPAN}` (`{SPAN:N}` for
    zero-padded numbers) and `{VERSION}` placeholders, e.g. `span-{SPAN}` over a folder of spans
    or `span-{SPAN}/ratings.csv`: the newest span is ingested, or the one `range_config` names
    (a StaticRange of one span, see inputs.span_range_config), and the Examples artifact
    carries its `span` and `version` (numbered from ML Metadata without `{VERSION}`). With one input split the output is hash-split by
    `output_config` (default train 9 : eval 1); with several (e.g. predefined train and eval
    files) each becomes its own output split. `options` (see options.Options): what to do with
    malformed lines ("fail": the first one stops the run, naming file:line; "skip": they are
    quarantined and counted, and more than `max_rejected_fraction` of a file fails), a forced
    layout instead of the detected one, and the code version that keys the cache.
    """

    EXECUTOR_SPEC = BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = driver.ContentFingerprintDriver

    def __init__(self, input_base: str, input_config: Optional[example_gen_pb2.Input] = None,
                 output_config: Optional[example_gen_pb2.Output] = None,
                 options: Options = Options(),
                 range_config: Optional[range_config_pb2.RangeConfig] = None):
        input_config = input_config or make_input_config({"single_split": WHOLE_INPUT_BASE})
        if output_config is None:
            output_config = (make_output_config() if len(input_config.splits) == 1
                             else example_gen_pb2.Output())
        super().__init__(
            input_base=input_base, input_config=input_config, output_config=output_config,
            custom_config=options.to_custom_config(),
            range_config=range_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP)


def locate_input(source: Source) -> Tuple[str, str]:
    """(input_base, split pattern) of a resolved data set (see kiko_data.movielens.source).

    The pattern names the zip or the ratings file itself; the side files are found beside it.
    Any filesystem TFX reads works (gs://, s3://, hdfs://, ram://, local).
    """
    target = source.ratings.path  # the zip for a zip member, else the ratings file
    return files.parent(target), files.basename(target)


class DataLocation(NamedTuple):
    """Where MovieLensExampleGen reads a `--data` value: input_base, the split pattern (with
    placeholders for spans) and the data set it resolves to now (the newest span's, or the
    asked span's), whose side files tell which schema applies."""

    input_base: str
    pattern: str
    latest_source: Source


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _spans_in(folder: str) -> Optional[str]:
    """The `span-{SPAN}` pattern of a folder of spans, None for anything else."""
    if not fileio.isdir(folder):
        return None
    return spans.spans_pattern(name.rstrip("/") for name in fileio.listdir(folder))


def locate_data(data: str, layout: str = AUTO, span: Optional[int] = None) -> DataLocation:
    """(input_base, pattern, latest_source) of `data`: a folder of spans (`span-1/`, ... or
    `span-1.zip`, ...), a path with `{SPAN}`/`{VERSION}` placeholders
    (`data/span-{SPAN}/ratings.csv`), or one data set (zip, folder or ratings file).

    For spans, latest_source is the newest span's data set (span `span` when given), resolved
    as TFX's ExampleGen driver will; SpanNotFoundError names the folder and the pattern when
    none matches.
    """
    if spans.has_placeholders(data):
        input_base, pattern = spans.split_pattern(data)
    else:
        pattern = _spans_in(data)
        if pattern is None:
            if span is not None:
                raise SpanNotFoundError(
                    f"span {span} asked for, but {data} is one data set, not a folder of spans "
                    f"({spans.span_dir_name(1)}, {spans.span_dir_name(2)}, ...) or a pattern "
                    "with {SPAN}")
            source = resolve_source(data, layout)
            input_base, pattern = locate_input(source)
            return DataLocation(input_base, pattern, source)
        input_base = data
    input_base = _absolute(input_base)
    return DataLocation(input_base, pattern,
                        resolve_span(input_base, pattern, layout, span).source)
