"""A gate between ExampleValidator and training.

ExampleValidator records anomalies but lets the pipeline go on; a model must not be trained on
data that breaks the curated schema (say a rating of 7). This component reads the
ExampleAnomalies artifact and raises, naming each anomaly, so the run stops before training
with the anomalies artifact already recorded in ML Metadata. For a value out of range it names
a line holding the extreme value, from MovieLensExampleGen's data-quality report.
"""

import json
import os
from typing import Dict, List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

from kiko.components._tfx_internal import ANOMALIES_FILE_NAME
from kiko.components.movielens_example_gen.outputs import DATA_QUALITY_PROPERTY

_Type = anomalies_pb2.AnomalyInfo.Type
_HIGH = {_Type.INT_TYPE_BIG_INT, _Type.FLOAT_TYPE_BIG_FLOAT}
_LOW = {_Type.INT_TYPE_SMALL_INT, _Type.FLOAT_TYPE_SMALL_FLOAT}


class DataAnomaliesError(RuntimeError):
    """The data does not match the schema; the message lists each anomaly."""


def extremes_of(data_quality: Dict) -> Dict[str, Dict]:
    """Feature -> {low, low_at, high, high_at} from an ExampleGen data-quality report."""
    extremes = dict(data_quality.get("extremes", {}))
    for side in (data_quality.get("side_files") or {}).values():
        extremes.update((side or {}).get("extremes", {}))
    return extremes


def describe_anomalies(anomalies: anomalies_pb2.Anomalies, split: str,
                       extremes: Dict[str, Dict]) -> List[str]:
    """One line per anomalous feature (or dataset-level anomaly) of one split."""
    lines = []
    for name, info in sorted(anomalies.anomaly_info.items()):
        line = f"[{split}] {name}: {info.short_description} -- {info.description}"
        extreme = extremes.get(name)
        types = {reason.type for reason in info.reason}
        if extreme and types & _HIGH:
            line += f" (e.g. {extreme['high']:g} at {extreme['high_at']})"
        if extreme and types & _LOW:
            line += f" (e.g. {extreme['low']:g} at {extreme['low_at']})"
        lines.append(line)
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"[{split}] (dataset): {info.short_description} -- {info.description}")
    return lines


def read_anomalies(anomalies_uri: str, split: str) -> anomalies_pb2.Anomalies:
    path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE_NAME)
    return anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))


@tfx.dsl.components.component
def AnomaliesGate(
        anomalies: tfx.dsl.components.InputArtifact[
            tfx.types.standard_artifacts.ExampleAnomalies],
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
) -> None:
    """Raises DataAnomaliesError if any split of `anomalies` has an anomaly."""
    report = examples.get_string_custom_property(DATA_QUALITY_PROPERTY)
    extremes = extremes_of(json.loads(report)) if report else {}
    problems: List[str] = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        problems += describe_anomalies(read_anomalies(anomalies.uri, split), split, extremes)
    if problems:
        raise DataAnomaliesError(
            f"data anomalies (see {anomalies.uri}); the run stops before training:\n  "
            + "\n  ".join(problems))
