"""Drift and volume of a new span against the previous validated span.

TFDV's drift comparators measure what they can from the two spans' statistics: the
Jensen-Shannon divergence of the rating distribution (a numeric feature: TFDV compares the
histograms) and the ratio of example counts (`num_examples_drift_comparator`). Which users and
movies are new cannot be read from statistics (TFDV keeps a sketch of the top values, not every
id), so the novelty of ids is measured from the distinct-id files MovieLensExampleGen writes per
span: the share of the new span's distinct users (movies) seen in no earlier validated span.

TFX's DistributionValidator runs the same TFDV comparators, but it needs a baseline on every
run (the first span has none) and measures no id novelty; the gate runs them itself.
"""

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from kiko.components.anomalies_gate.thresholds import DriftThresholds
from kiko.model import features as fk

JSD = "jensen_shannon_divergence"
UNSEEN = "unseen_fraction"
COUNT_RATIO = "count_ratio"
EXAMPLES_FEATURE = "(examples)"

def _train_dataset(statistics: statistics_pb2.DatasetFeatureStatisticsList
                   ) -> statistics_pb2.DatasetFeatureStatisticsList:
    return statistics_pb2.DatasetFeatureStatisticsList(datasets=[statistics.datasets[0]])


def comparator_schema(schema: schema_pb2.Schema, thresholds: DriftThresholds
                      ) -> schema_pb2.Schema:
    """`schema` with the drift comparators of `thresholds` on the rating and the example count."""
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    rating = tfdv.get_feature(schema, fk.RATING)
    rating.drift_comparator.jensen_shannon_divergence.threshold = thresholds.rating_jsd
    count = schema.dataset_constraints.num_examples_drift_comparator
    count.min_fraction_threshold = thresholds.min_count_ratio
    count.max_fraction_threshold = thresholds.max_count_ratio
    return schema


def _jsd(anomalies: anomalies_pb2.Anomalies) -> float:
    for info in anomalies.drift_skew_info:
        if list(info.path.step) == [fk.RATING]:
            for measurement in info.drift_measurements:
                if measurement.type == anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
                    return float(measurement.value)
    raise ValueError("TFDV reported no Jensen-Shannon divergence for the rating")


def _num_examples(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> int:
    return int(statistics.datasets[0].num_examples)


def unseen_fraction(ids: np.ndarray, seen: np.ndarray) -> float:
    """The share of the distinct `ids` not in `seen` (0 for no ids)."""
    if len(ids) == 0:
        return 0.0
    return float(np.mean(~np.isin(ids, seen, assume_unique=False)))


def measure(statistics: statistics_pb2.DatasetFeatureStatisticsList,
            baseline_statistics: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema, ids: Mapping[str, np.ndarray],
            seen_ids: Mapping[str, np.ndarray], thresholds: DriftThresholds
            ) -> List[Dict[str, Any]]:
    """Each measure of the new span against the baseline: feature, measure, value, threshold
    and whether it was exceeded. Statistics are one split's (TFDV compares one dataset)."""
    current, baseline = _train_dataset(statistics), _train_dataset(baseline_statistics)
    anomalies = tfdv.validate_statistics(current, comparator_schema(schema, thresholds),
                                         previous_statistics=baseline)
    jsd = _jsd(anomalies)
    ratio = _num_examples(current) / max(_num_examples(baseline), 1)
    measures = [
        {"feature": fk.RATING, "measure": JSD, "value": jsd, "threshold": thresholds.rating_jsd,
         "exceeded": jsd > thresholds.rating_jsd},
    ]
    for feature, threshold in ((fk.USER_ID, thresholds.unseen_users),
                               (fk.MOVIE_ID, thresholds.unseen_movies)):
        value = unseen_fraction(ids[feature], seen_ids[feature])
        measures.append({"feature": feature, "measure": UNSEEN, "value": value,
                         "threshold": threshold, "exceeded": value > threshold})
    measures.append({
        "feature": EXAMPLES_FEATURE, "measure": COUNT_RATIO, "value": ratio,
        "threshold": f"{thresholds.min_count_ratio:g}..{thresholds.max_count_ratio:g}",
        "exceeded": not thresholds.min_count_ratio <= ratio <= thresholds.max_count_ratio})
    return measures


_MEASURE_TEXT = {JSD: "Jensen-Shannon divergence from the previous span",
                 UNSEEN: "share of distinct ids seen in no earlier span",
                 COUNT_RATIO: "examples over the previous span's"}


def describe(measure_: Mapping[str, Any]) -> str:
    """`rating: Jensen-Shannon divergence ... 0.4173, above the threshold 0.05`."""
    value, threshold = measure_["value"], measure_["threshold"]
    text = f"{measure_['feature']}: {_MEASURE_TEXT.get(measure_['measure'], measure_['measure'])}"
    if isinstance(threshold, str):
        where = "outside the range" if measure_["exceeded"] else "within the range"
        return f"{text} {value:.4g}, {where} {threshold}"
    where = "above the threshold" if measure_["exceeded"] else "within the threshold"
    return f"{text} {value:.4g}, {where} {threshold:g}"


def drift_report(span: int, baseline_span: Optional[int], examples: int,
                 baseline_examples: Optional[int], measures: List[Dict[str, Any]]
                 ) -> Dict[str, Any]:
    """The JSON the gate records on its verdict (and kiko inspect/report show)."""
    return {"span": span, "baseline_span": -1 if baseline_span is None else baseline_span,
            "examples": examples, "baseline_examples": baseline_examples,
            "measures": measures}
