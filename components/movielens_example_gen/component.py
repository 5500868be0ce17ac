"""MovieLensExampleGen: a FileBasedExampleGen for MovieLens-format rating files."""

import os
from typing import Mapping, Optional, Tuple

from tfx import types
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts

from components._tfx_internal import BeamExecutorSpec, FileBasedExampleGen
from components.movielens_example_gen import executor, spec
from components.movielens_example_gen.options import (
    MALFORMED_CHOICES, MALFORMED_FAIL, PARTITION_BY_RATING, PARTITION_BY_USER, PARTITION_CHOICES)
from kiko_model import features as fk
from kiko_data import movielens



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
    """Ingests MovieLens ratings (ml-1m.zip, or a ratings file) into split gzip TFRecords.

    `input_base` is the folder holding the input; each input split's pattern names one zip or
    one ratings file in it (users.dat and movies.dat beside it are joined when present). With
    one input split the output is hash-split by `output_config` (default train 9 : eval 1);
    with several (e.g. predefined train and eval files) each becomes its own output split.
    """

    SPEC_CLASS = spec.MovieLensExampleGenSpec
    EXECUTOR_SPEC = BeamExecutorSpec(executor.Executor)

    def __init__(self, input_base: str, input_config: Optional[example_gen_pb2.Input] = None,
                 output_config: Optional[example_gen_pb2.Output] = None,
                 malformed_lines: str = MALFORMED_FAIL):
        if malformed_lines not in MALFORMED_CHOICES:
            raise ValueError(f"malformed_lines must be one of {MALFORMED_CHOICES}, "
                             f"got {malformed_lines!r}")
        input_config = input_config or make_input_config({"single_split": fk.RATINGS_FILE})
        if output_config is None:
            output_config = (make_output_config() if len(input_config.splits) == 1
                             else example_gen_pb2.Output())
        component_spec = spec.MovieLensExampleGenSpec(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            malformed_lines=malformed_lines,
            examples=types.Channel(type=standard_artifacts.Examples))
        # FileBasedExampleGen.__init__ hard-codes its own spec class; build ours instead.
        super(FileBasedExampleGen, self).__init__(spec=component_spec)


def locate_input(path: str) -> Tuple[str, str]:
    """(input_base, split pattern) for a user's data path: ml-1m.zip, a folder or a ratings file.

    The pattern names the zip or the ratings file itself, so TFX's input fingerprint (and so
    the cache) follows it; users.dat and movies.dat are found beside it at run time.
    """
    path = os.path.abspath(path)
    if os.path.isdir(path):
        path = movielens.resolve_source(path).ratings.path
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"MovieLens input {path} does not exist")
    return os.path.dirname(path), os.path.basename(path)
