"""The one place that imports TFX internals (not part of `tfx.v1`) used by kiko's components."""

import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.example_gen.driver import FileBasedDriver
from tfx.components.example_gen.utils import (
    FINGERPRINT_PROPERTY_NAME, generate_output_split_names)
from tfx.components.example_validator.executor import DEFAULT_FILE_NAME as ANOMALIES_FILE_NAME
from tfx.components.util import examples_utils
from tfx.dsl.components.base.executor_spec import BeamExecutorSpec

__all__ = [
    "ANOMALIES_FILE_NAME",
    "BaseExampleGenExecutor",
    "BeamExecutorSpec",
    "FINGERPRINT_PROPERTY_NAME",
    "FileBasedDriver",
    "FileBasedExampleGen",
    "examples_utils",
    "generate_output_split_names",
    "write_split",
]
