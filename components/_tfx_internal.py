"""The one place that imports TFX internals (not part of `tfx.v1`): for kiko's components, and
for the local runner's crash recovery (its own run id, marking a killed run's executions)."""

from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.example_gen.driver import FileBasedDriver
from tfx.components.example_gen.input_processor import FileBasedInputProcessor
from tfx.components.example_gen.utils import (
    FINGERPRINT_PROPERTY_NAME, SPAN_PROPERTY_NAME, VERSION_PROPERTY_NAME,
    generate_output_split_names)
from tfx.components.example_validator.executor import DEFAULT_FILE_NAME as ANOMALIES_FILE_NAME
from tfx.components.util import examples_utils
from tfx.dsl.compiler.constants import NODE_CONTEXT_TYPE_NAME, PIPELINE_RUN_ID_PARAMETER_NAME
from tfx.dsl.components.base.executor_spec import BeamExecutorSpec
from tfx.orchestration import data_types
from tfx.orchestration.metadata import Metadata
from tfx.orchestration.portable.execution_publish_utils import publish_failed_execution
from tfx.orchestration.portable.runtime_parameter_utils import substitute_runtime_parameter
from tfx.proto.orchestration.execution_result_pb2 import ExecutorOutput

__all__ = [
    "ANOMALIES_FILE_NAME",
    "BaseExampleGenExecutor",
    "BeamExecutorSpec",
    "ExecutorOutput",
    "FINGERPRINT_PROPERTY_NAME",
    "FileBasedDriver",
    "FileBasedExampleGen",
    "FileBasedInputProcessor",
    "Metadata",
    "NODE_CONTEXT_TYPE_NAME",
    "PIPELINE_RUN_ID_PARAMETER_NAME",
    "SPAN_PROPERTY_NAME",
    "VERSION_PROPERTY_NAME",
    "data_types",
    "examples_utils",
    "generate_output_split_names",
    "publish_failed_execution",
    "substitute_runtime_parameter",
    "write_split",
]
