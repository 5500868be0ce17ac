"""ExampleGen driver whose input fingerprint is the content of every file the data is read from.

TFX's FileBasedDriver fingerprints the files a split pattern matches by size and modification
time, and only those: an edit that keeps both, or a change of `users.dat` beside the matched
`ratings.dat`, would be served the cached examples of the old data. This driver hashes (SHA-256,
streamed) the ratings file and the side files the executor will join.
"""

from typing import Any, Dict

from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from kiko.components._tfx_internal import (
    FINGERPRINT_PROPERTY_NAME, FileBasedDriver, data_types)
from kiko.components.movielens_example_gen.inputs import resolve_pattern
from kiko.components.movielens_example_gen.options import Options


def content_fingerprint(input_base: str, input_config: example_gen_pb2.Input,
                        layout: str) -> str:
    """`split:<name>,<file>:sha256=<hex>,...` over every file of every input split."""
    parts = []
    for split in input_config.splits:
        source = resolve_pattern(input_base, split.pattern, layout)
        parts.append(f"split:{split.name},layout:{source.layout_name}," + ",".join(
            f"{ref.display_name}:sha256={ref.sha256()}" for ref in source.files))
    return "\n".join(parts)


class ContentFingerprintDriver(FileBasedDriver):
    """FileBasedDriver (spans, versions, patterns) with a content fingerprint."""

    def resolve_exec_properties(self, exec_properties: Dict[str, Any],
                                pipeline_info: data_types.PipelineInfo,
                                component_info: data_types.ComponentInfo) -> Dict[str, Any]:
        exec_properties = super().resolve_exec_properties(exec_properties, pipeline_info,
                                                          component_info)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        exec_properties[FINGERPRINT_PROPERTY_NAME] = content_fingerprint(
            exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config,
            Options.from_exec_properties(exec_properties).layout)
        return exec_properties
