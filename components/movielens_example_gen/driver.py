"""ExampleGen driver: TFX's span resolution, a content fingerprint of the resolved span's files,
and versions numbered from ML Metadata.

Fingerprint. TFX's FileBasedDriver fingerprints the files a split pattern matches by size and
modification time, and only those: an edit that keeps both, or a change of `users.dat` beside
the matched `ratings.dat`, would be served the cached examples of the old data. This driver
hashes (SHA-256, streamed) the ratings file and the side files the executor will join, of the
resolved span only (TFX has rewritten `span-{SPAN}` to `span-3` by then).

Version. Without a `{VERSION}` placeholder TFX leaves the version unset. Here it is numbered
per span from the LIVE Examples artifacts of this node in ML Metadata: the newest version of the
span when its fingerprint is this input's (the span is unchanged: same exec properties, so the
run is a cache hit), else one more than the newest (the span's content changed: it is ingested
again), else 0 (first ingestion). Span, version and fingerprint are exec properties (the cache
key) and custom properties of the output artifact (span and version also its properties).
"""

from typing import Any, Dict, Optional

from absl import logging
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration.portable import data_types as portable_data_types
from tfx.proto import example_gen_pb2
from tfx.proto.orchestration import driver_output_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from kiko.components._tfx_internal import (
    FINGERPRINT_PROPERTY_NAME, NODE_CONTEXT_TYPE_NAME, SPAN_PROPERTY_NAME,
    VERSION_PROPERTY_NAME, FileBasedDriver, data_types)
from kiko.components.movielens_example_gen.inputs import resolve_pattern
from kiko.components.movielens_example_gen.options import Options


def content_fingerprint(input_base: str, input_config: example_gen_pb2.Input,
                        layout: str) -> str:
    """`split:<name>,<file>:sha256=<hex>,...` over every file of every (resolved) input split."""
    parts = []
    for split in input_config.splits:
        source = resolve_pattern(input_base, split.pattern, layout)
        parts.append(f"split:{split.name},layout:{source.layout_name}," + ",".join(
            f"{ref.display_name}:sha256={ref.sha256()}" for ref in source.files))
    return "\n".join(parts)


def node_context_name(execution_info: portable_data_types.ExecutionInfo) -> Optional[str]:
    """The name of the ML Metadata context of the node being run (`<pipeline>.<node>`)."""
    for context in execution_info.pipeline_node.contexts.contexts:
        if context.type.name == NODE_CONTEXT_TYPE_NAME:
            return context.name.field_value.string_value
    pipeline_id = execution_info.pipeline_info.id if execution_info.pipeline_info else ""
    node_id = execution_info.pipeline_node.node_info.id
    return f"{pipeline_id}.{node_id}" if pipeline_id and node_id else None


def number_version(store: metadata_store.MetadataStore, node_context: str, span: int,
                   fingerprint: str) -> int:
    """The version of `span` with content `fingerprint`, from the node's LIVE artifacts: the
    newest version when it has this fingerprint, else one more than it, else 0."""
    context = store.get_context_by_type_and_name(NODE_CONTEXT_TYPE_NAME, node_context)
    if context is None:
        return 0
    newest = None  # (version, artifact id, fingerprint)
    for artifact in store.get_artifacts_by_context(context.id):
        props = artifact.custom_properties
        if (artifact.state != metadata_store_pb2.Artifact.LIVE
                or SPAN_PROPERTY_NAME not in props or VERSION_PROPERTY_NAME not in props
                or props[SPAN_PROPERTY_NAME].int_value != span):
            continue
        candidate = (props[VERSION_PROPERTY_NAME].int_value, artifact.id,
                     props[FINGERPRINT_PROPERTY_NAME].string_value
                     if FINGERPRINT_PROPERTY_NAME in props else "")
        newest = candidate if newest is None or candidate[:2] > newest[:2] else newest
    if newest is None:
        return 0
    return newest[0] if newest[2] == fingerprint else newest[0] + 1


class ContentFingerprintDriver(FileBasedDriver):
    """FileBasedDriver (spans, versions, patterns) with a content fingerprint and versions
    numbered from ML Metadata."""

    _node_context: Optional[str] = None

    def run(self, execution_info: portable_data_types.ExecutionInfo
            ) -> driver_output_pb2.DriverOutput:
        """TFX's run (which resolves the exec properties and sets span, version and
        fingerprint on the output artifact), knowing which node it numbers versions for."""
        self._node_context = node_context_name(execution_info)
        try:
            result = super().run(execution_info)
        finally:
            self._node_context = None
        # Also as the Examples type's own properties, which TFX's resolver functions read
        # (input_resolution ops: latest_version, rolling ranges).
        for artifact in result.output_artifacts[
                standard_component_specs.EXAMPLES_KEY].artifacts:
            for name in (SPAN_PROPERTY_NAME, VERSION_PROPERTY_NAME):
                if name in artifact.custom_properties:
                    artifact.properties[name].int_value = (
                        artifact.custom_properties[name].int_value)
        return result

    def resolve_exec_properties(self, exec_properties: Dict[str, Any],
                                pipeline_info: data_types.PipelineInfo,
                                component_info: data_types.ComponentInfo) -> Dict[str, Any]:
        exec_properties = super().resolve_exec_properties(exec_properties, pipeline_info,
                                                          component_info)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        fingerprint = content_fingerprint(
            exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config,
            Options.from_exec_properties(exec_properties).layout)
        exec_properties[FINGERPRINT_PROPERTY_NAME] = fingerprint
        span = exec_properties[SPAN_PROPERTY_NAME]
        # Called outside run() (no node known), the version stays TFX's.
        if exec_properties.get(VERSION_PROPERTY_NAME) is None and self._node_context:
            with self._metadata_handle as handle:
                version = number_version(handle.store, self._node_context, span, fingerprint)
            exec_properties[VERSION_PROPERTY_NAME] = version
            logging.info("MovieLensExampleGen: span %d, version %d (%s)", span, version,
                         ", ".join(split.pattern for split in input_config.splits))
        return exec_properties
