"""Wiring of the kiko pipeline: every path, threshold and option comes in as an argument."""

from typing import List, Optional

from tfx import v1 as tfx
from tfx.proto import example_gen_pb2

from components.anomalies_gate import AnomaliesGate
from components.movielens_example_gen.component import MovieLensExampleGen
from kiko_model import features as fk


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    input_base: str,
    schema_path: str,
    metadata_path: str,
    input_config: Optional[example_gen_pb2.Input] = None,
    output_config: Optional[example_gen_pb2.Output] = None,
    malformed_lines: str = "fail",
    beam_pipeline_args: Optional[List[str]] = None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """MovieLens files -> split tf.Examples -> statistics -> schema check -> anomalies gate."""
    example_gen = MovieLensExampleGen(
        input_base=input_base, input_config=input_config, output_config=output_config,
        malformed_lines=malformed_lines).with_id(fk.EXAMPLE_GEN_ID)
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"]).with_id(fk.STATISTICS_GEN_ID)
    schema_gen = tfx.components.ImportSchemaGen(
        schema_file=schema_path).with_id(fk.SCHEMA_GEN_ID)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"]).with_id(fk.EXAMPLE_VALIDATOR_ID)
    anomalies_gate = AnomaliesGate(
        anomalies=example_validator.outputs["anomalies"]).with_id(fk.ANOMALIES_GATE_ID)

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, example_validator, anomalies_gate],
        enable_cache=enable_cache,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path),
        beam_pipeline_args=beam_pipeline_args or [],
    )
