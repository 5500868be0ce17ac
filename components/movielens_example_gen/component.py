"""MovieLensExampleGen: a FileBasedExampleGen for MovieLens data in any of its layouts."""

from typing import Mapping, Optional, Tuple

from google.protobuf import any_pb2, struct_pb2
from tfx.proto import example_gen_pb2

from components._tfx_internal import BeamExecutorSpec, FileBasedExampleGen
from components.movielens_example_gen import driver, executor
from components.movielens_example_gen.executor import WHOLE_INPUT_BASE
from components.movielens_example_gen.options import (
    CODE_VERSION_KEY, DEFAULT_MAX_REJECTED_FRACTION, LAYOUT_KEY, MALFORMED_CHOICES, MALFORMED_FAIL,
    MALFORMED_LINES_KEY, MAX_REJECTED_FRACTION_KEY, PARTITION_BY_RATING, PARTITION_BY_USER,
    PARTITION_CHOICES)
from kiko_data.movielens import AUTO, LAYOUT_CHOICES, files
from kiko_data.movielens.source import Source
from kiko_model import features as fk


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


def make_custom_config(malformed_lines: str = MALFORMED_FAIL,
                       max_rejected_fraction: float = DEFAULT_MAX_REJECTED_FRACTION,
                       layout: str = AUTO, code_version: str = "") -> example_gen_pb2.CustomConfig:
    """The executor's options, validated, as TFX's CustomConfig (a Struct in an Any).

    `code_version` is not read by the executor: it is there so that the cache key changes
    when the parsing code does (TFX caches by configuration, not by code).
    """
    if malformed_lines not in MALFORMED_CHOICES:
        raise ValueError(f"malformed_lines must be one of {MALFORMED_CHOICES}, "
                         f"got {malformed_lines!r}")
    if not 0 <= max_rejected_fraction <= 1:
        raise ValueError(f"max_rejected_fraction must be in [0, 1], got {max_rejected_fraction}")
    if layout not in LAYOUT_CHOICES:
        raise ValueError(f"layout must be one of {LAYOUT_CHOICES}, got {layout!r}")
    values = struct_pb2.Struct()
    values.update({MALFORMED_LINES_KEY: malformed_lines,
                   MAX_REJECTED_FRACTION_KEY: float(max_rejected_fraction), LAYOUT_KEY: layout,
                   CODE_VERSION_KEY: code_version})
    packed = any_pb2.Any()
    packed.Pack(values)
    return example_gen_pb2.CustomConfig(custom_config=packed)


class MovieLensExampleGen(FileBasedExampleGen):
    """Ingests MovieLens data (any release's layout; zip, folder or ratings file) into split
    gzip TFRecords, with a data-quality report on the Examples artifact.

    `input_base` is the folder holding the input; each input split's pattern names one zip,
    folder or ratings file in it, "." (the default) input_base itself (the side files of its
    layout are joined when present). With
    one input split the output is hash-split by `output_config` (default train 9 : eval 1);
    with several (e.g. predefined train and eval files) each becomes its own output split.
    `malformed_lines` is "fail" (the first bad line stops the run, naming file:line) or "skip"
    (bad lines are quarantined and counted; more than `max_rejected_fraction` of a file fails).
    `layout` forces one of kiko_data.movielens.LAYOUTS instead of detecting it;
    `code_version` (a hash of the parsing code) only keys the cache.
    """

    EXECUTOR_SPEC = BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = driver.ContentFingerprintDriver

    def __init__(self, input_base: str, input_config: Optional[example_gen_pb2.Input] = None,
                 output_config: Optional[example_gen_pb2.Output] = None,
                 malformed_lines: str = MALFORMED_FAIL,
                 max_rejected_fraction: float = DEFAULT_MAX_REJECTED_FRACTION,
                 layout: str = AUTO, code_version: str = ""):
        input_config = input_config or make_input_config({"single_split": WHOLE_INPUT_BASE})
        if output_config is None:
            output_config = (make_output_config() if len(input_config.splits) == 1
                             else example_gen_pb2.Output())
        super().__init__(
            input_base=input_base, input_config=input_config, output_config=output_config,
            custom_config=make_custom_config(malformed_lines, max_rejected_fraction, layout,
                                             code_version),
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP)


def locate_input(source: Source) -> Tuple[str, str]:
    """(input_base, split pattern) of a resolved data set (see kiko_data.movielens.source).

    The pattern names the zip or the ratings file itself; the side files are found beside it.
    Any filesystem TFX reads works (gs://, s3://, hdfs://, ram://, local).
    """
    target = source.ratings.path  # the zip for a zip member, else the ratings file
    return files.parent(target), files.basename(target)
