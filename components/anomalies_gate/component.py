"""A gate between ExampleValidator and training.

ExampleValidator records anomalies but lets the pipeline go on; a model must not be trained on
data that breaks the curated schema (say a rating of 7). This component reads the
ExampleAnomalies artifact and raises, naming each anomaly, so the run stops before training
with the anomalies artifact already recorded in ML Metadata.
"""

import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components._tfx_internal import ANOMALIES_FILE_NAME


class DataAnomaliesError(RuntimeError):
    """The data does not match the schema; the message lists each anomaly."""


def describe_anomalies(anomalies: anomalies_pb2.Anomalies, split: str) -> List[str]:
    """One line per anomalous feature (or dataset-level anomaly) of one split."""
    lines = [f"[{split}] {name}: {info.short_description} -- {info.description}"
             for name, info in sorted(anomalies.anomaly_info.items())]
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"[{split}] (dataset): {info.short_description} -- {info.description}")
    return lines


def read_anomalies(anomalies_uri: str, split: str) -> anomalies_pb2.Anomalies:
    path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE_NAME)
    return anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))


@tfx.dsl.components.component
def AnomaliesGate(anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies]) -> None:
    """Raises DataAnomaliesError if any split of `anomalies` has an anomaly."""
    problems: List[str] = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        problems += describe_anomalies(read_anomalies(anomalies.uri, split), split)
    if problems:
        raise DataAnomaliesError(
            f"data anomalies (see {anomalies.uri}); the run stops before training:\n  "
            + "\n  ".join(problems))
