"""The data gate between validation and training: schema anomalies and drift of the new span.

ExampleValidator records anomalies but lets the pipeline go on; a model must not be trained on
data that breaks the curated schema (say a rating of 7), nor, unasked, on a span that no longer
looks like the data before it. The gate reads the ExampleAnomalies artifact and raises, naming
each anomaly (for a value out of range, a line holding the extreme value, from
MovieLensExampleGen's data-quality report), so the run stops before training with the anomalies
recorded in ML Metadata. Then it measures the new span against the previous validated span
(drift.py) and stops the run, or warns, when a measure exceeds its threshold.

A span that passes gets a SpanVerdict artifact: the window of spans the Trainer reads is made of
spans with a verdict (components/span_resolver), so a span the gate stopped is never trained on.
"""

import json
import os
from typing import Any, Dict, List

import numpy as np
from absl import logging
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils

from kiko.components._tfx_internal import ANOMALIES_FILE_NAME
from kiko.components.anomalies_gate import drift, thresholds as drift_thresholds
from kiko.components.anomalies_gate.verdicts import (
    VERDICT_DRIFT_WARNED, VERDICT_FIRST_SPAN, VERDICT_PASSED, SpanVerdict)
from kiko.components.movielens_example_gen import outputs as example_outputs
from kiko.components.movielens_example_gen.outputs import DATA_QUALITY_PROPERTY
from kiko.components.span_resolver.strategy import span_of, version_of
from kiko.model import features as fk

_Type = anomalies_pb2.AnomalyInfo.Type
_HIGH = {_Type.INT_TYPE_BIG_INT, _Type.FLOAT_TYPE_BIG_FLOAT}
_LOW = {_Type.INT_TYPE_SMALL_INT, _Type.FLOAT_TYPE_SMALL_FLOAT}

# Input and output keys.
ANOMALIES_KEY = "anomalies"
EXAMPLES_KEY = "examples"
STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"
BASELINE_EXAMPLES_KEY = "baseline_examples"  # every earlier validated span (their ids)
BASELINE_STATISTICS_KEY = "baseline_statistics"  # the previous validated span's statistics
VERDICT_KEY = "verdict"
THRESHOLDS_KEY = "drift_thresholds"
ON_DRIFT_KEY = "on_drift"

# The verdict of a span the gate let through.
DRIFT_FILE = "drift.json"
# The statistics split compared (TFDV compares one dataset with one dataset).
COMPARED_SPLIT = fk.TRAIN_SPLIT


class DataAnomaliesError(RuntimeError):
    """The data does not match the schema; the message lists each anomaly."""


class DataDriftError(RuntimeError):
    """The new span drifted from the previous one; the message names each measure."""


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
        types_ = {reason.type for reason in info.reason}
        if extreme and types_ & _HIGH:
            line += f" (e.g. {extreme['high']:g} at {extreme['high_at']})"
        if extreme and types_ & _LOW:
            line += f" (e.g. {extreme['low']:g} at {extreme['low_at']})"
        lines.append(line)
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"[{split}] (dataset): {info.short_description} -- {info.description}")
    return lines


def read_anomalies(anomalies_uri: str, split: str) -> anomalies_pb2.Anomalies:
    path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE_NAME)
    return anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))


def check_schema(anomalies: types.Artifact, examples: types.Artifact) -> None:
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


def _seen_ids(baseline_examples: List[types.Artifact], feature: str) -> np.ndarray:
    arrays = [example_outputs.read_ids(artifact.uri, feature) for artifact in baseline_examples]
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, np.int64)


def _load_statistics(statistics: types.Artifact):
    from tfx.components.statistics_gen import stats_artifact_utils

    return stats_artifact_utils.load_statistics(statistics, COMPARED_SPLIT).proto()


def judge_drift(examples: types.Artifact, statistics: types.Artifact, schema_uri: str,
                baseline_examples: List[types.Artifact],
                baseline_statistics: List[types.Artifact],
                thresholds: drift_thresholds.DriftThresholds) -> Dict[str, Any]:
    """The drift report of the new span (no measures for the first span)."""
    span = span_of(examples)
    current = _load_statistics(statistics)
    examples_count = int(current.datasets[0].num_examples)
    if not baseline_statistics:
        return drift.drift_report(span, None, examples_count, None, [])
    schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_uri))
    baseline = _load_statistics(baseline_statistics[0])
    ids = {feature: example_outputs.read_ids(examples.uri, feature)
           for feature in (fk.USER_ID, fk.MOVIE_ID)}
    seen = {feature: _seen_ids(baseline_examples, feature) for feature in ids}
    measures = drift.measure(current, baseline, schema, ids, seen, thresholds)
    return drift.drift_report(span, span_of(baseline_examples[-1]), examples_count,
                              int(baseline.datasets[0].num_examples), measures)


class AnomaliesGateSpec(ComponentSpec):
    PARAMETERS = {THRESHOLDS_KEY: ExecutionParameter(type=str),
                  ON_DRIFT_KEY: ExecutionParameter(type=str)}
    INPUTS = {
        ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies),
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
        SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
        BASELINE_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples,
                                                optional=True, allow_empty=True),
        BASELINE_STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics,
                                                  optional=True, allow_empty=True),
    }
    OUTPUTS = {VERDICT_KEY: ChannelParameter(type=SpanVerdict)}


class Executor(base_executor.BaseExecutor):
    """Schema anomalies stop the run; drift stops it or warns; else a SpanVerdict."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        statistics = artifact_utils.get_single_instance(input_dict[STATISTICS_KEY])
        check_schema(artifact_utils.get_single_instance(input_dict[ANOMALIES_KEY]), examples)
        report = judge_drift(
            examples, statistics,
            artifact_utils.get_single_instance(input_dict[SCHEMA_KEY]).uri,
            list(input_dict.get(BASELINE_EXAMPLES_KEY) or []),
            list(input_dict.get(BASELINE_STATISTICS_KEY) or []),
            drift_thresholds.DriftThresholds.from_json(exec_properties[THRESHOLDS_KEY]))
        span = span_of(examples)
        exceeded = [m for m in report["measures"] if m["exceeded"]]
        if report["baseline_span"] < 0:
            verdict = VERDICT_FIRST_SPAN
            logging.info("AnomaliesGate: span %d is the first validated span: there is no "
                         "earlier span to measure its drift against", span)
        elif exceeded:
            message = (f"span {span} drifted from span {report['baseline_span']}: "
                       + "; ".join(drift.describe(m) for m in exceeded))
            if exec_properties[ON_DRIFT_KEY] == drift_thresholds.ON_DRIFT_STOP:
                # One line: the run's console and ML Metadata show an error's last line.
                raise DataDriftError(f"{message}; the run stops before training (--drift warn "
                                     "lets such a span through)")
            logging.warning("AnomaliesGate: %s; let through (on drift: warn)", message)
            verdict = VERDICT_DRIFT_WARNED
        else:
            verdict = VERDICT_PASSED
            logging.info("AnomaliesGate: span %d against span %d: %s", span,
                         report["baseline_span"],
                         "; ".join(drift.describe(m) for m in report["measures"]))
        out = artifact_utils.get_single_instance(output_dict[VERDICT_KEY])
        text = json.dumps(report, sort_keys=True)
        io_utils.write_string_file(os.path.join(out.uri, DRIFT_FILE), text)
        for key, value in (("span", span), ("version", version_of(examples)),
                           ("examples_id", examples.id), ("statistics_id", statistics.id),
                           ("baseline_span", report["baseline_span"])):
            out.set_int_custom_property(key, int(value))
        out.set_string_custom_property("verdict", verdict)
        out.set_string_custom_property("drift", text)


class AnomaliesGate(base_component.BaseComponent):
    """Stops the run on schema anomalies, and on drift of the new span unless `on_drift` is
    "warn"; outputs a SpanVerdict for a span it lets through."""

    SPEC_CLASS = AnomaliesGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, anomalies: types.BaseChannel, examples: types.BaseChannel,
                 statistics: types.BaseChannel, schema: types.BaseChannel,
                 thresholds: drift_thresholds.DriftThresholds,
                 baseline_examples: types.BaseChannel = None,
                 baseline_statistics: types.BaseChannel = None,
                 on_drift: str = drift_thresholds.ON_DRIFT_STOP):
        if on_drift not in drift_thresholds.ON_DRIFT_CHOICES:
            raise ValueError(f"on_drift must be one of {drift_thresholds.ON_DRIFT_CHOICES}, got {on_drift!r}")
        super().__init__(AnomaliesGateSpec(
            anomalies=anomalies, examples=examples, statistics=statistics, schema=schema,
            baseline_examples=baseline_examples, baseline_statistics=baseline_statistics,
            drift_thresholds=thresholds.to_json(), on_drift=on_drift,
            verdict=types.Channel(type=SpanVerdict)))
