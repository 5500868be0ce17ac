"""The one place that imports TFX internals (not part of `tfx.v1`) used by kiko's components."""

import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.example_validator.executor import DEFAULT_FILE_NAME as ANOMALIES_FILE_NAME
from tfx.dsl.components.base.executor_spec import BeamExecutorSpec
from tfx.types.component_spec import ExecutionParameter
from tfx.types.standard_component_specs import FileBasedExampleGenSpec

__all__ = [
    "ANOMALIES_FILE_NAME",
    "BaseExampleGenExecutor",
    "BeamExecutorSpec",
    "ExecutionParameter",
    "FileBasedExampleGen",
    "FileBasedExampleGenSpec",
]
