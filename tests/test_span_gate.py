"""The data gate's drift measures (TFDV comparators, id novelty, volume) and the span resolvers
(training window, drift baseline) on artifacts built here: fast, no pipeline run."""

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tfx.types import standard_artifacts

from kiko.components.anomalies_gate import drift
from kiko.components.anomalies_gate.component import SpanVerdict
from kiko.components.anomalies_gate.thresholds import DriftThresholds
from kiko.components.span_resolver import strategy
from kiko.model import features as fk
from kiko.pipeline import configs

THRESHOLDS = DriftThresholds(**configs.DRIFT_THRESHOLDS)


def _statistics(ratings):
    frame = pd.DataFrame({fk.RATING: np.asarray(ratings, np.float32)})
    return tfdv.generate_statistics_from_dataframe(frame)


@pytest.fixture(scope="module")
def spans():
    rng = np.random.default_rng(0)
    p = [0.06, 0.11, 0.27, 0.35, 0.21]  # a MovieLens-like rating histogram
    before = rng.choice(np.arange(1, 6), 6000, p=p)
    natural = rng.choice(np.arange(1, 6), 5800, p=p)
    return {"before": _statistics(before), "natural": _statistics(natural),
            "plus_one": _statistics(np.minimum(natural + 1, 5)),
            "tenfold": _statistics(np.concatenate([natural] * 10))}


def _schema(statistics):
    return tfdv.infer_schema(statistics)


def _ids(users, movies):
    return {fk.USER_ID: np.asarray(users, np.int64), fk.MOVIE_ID: np.asarray(movies, np.int64)}


SEEN = _ids(np.arange(1, 1001), np.arange(1, 501))


def _by_feature(measures):
    return {(m["feature"], m["measure"]): m for m in measures}


def test_natural_span_exceeds_nothing(spans):
    measures = drift.measure(spans["natural"], spans["before"], _schema(spans["before"]),
                             _ids(np.arange(500, 1300), np.arange(1, 520)), SEEN, THRESHOLDS)
    assert not [m for m in measures if m["exceeded"]], measures
    found = _by_feature(measures)
    assert found[(fk.USER_ID, drift.UNSEEN)]["value"] == pytest.approx(299 / 800)
    assert found[(fk.MOVIE_ID, drift.UNSEEN)]["value"] == pytest.approx(19 / 519)
    assert found[(drift.EXAMPLES_FEATURE, drift.COUNT_RATIO)]["value"] == pytest.approx(
        5800 / 6000)


def test_every_rating_one_star_up_is_drift_of_the_rating(spans):
    measures = drift.measure(spans["plus_one"], spans["before"], _schema(spans["before"]),
                             _ids(np.arange(1, 800), np.arange(1, 500)), SEEN, THRESHOLDS)
    exceeded = [m for m in measures if m["exceeded"]]
    assert [(m["feature"], m["measure"]) for m in exceeded] == [(fk.RATING, drift.JSD)]
    text = drift.describe(exceeded[0])
    assert text.startswith("rating: Jensen-Shannon divergence")
    assert f"above the threshold {THRESHOLDS.rating_jsd:g}" in text
    assert f"{exceeded[0]['value']:.4g}" in text


def test_ninety_percent_unseen_users_and_a_tenfold_volume_are_drift(spans):
    users = np.concatenate([np.arange(1, 51), np.arange(5001, 5451)])  # 450 of 500 unseen
    measures = _by_feature(drift.measure(spans["tenfold"], spans["before"],
                                         _schema(spans["before"]), _ids(users, [1, 2]), SEEN,
                                         THRESHOLDS))
    unseen = measures[(fk.USER_ID, drift.UNSEEN)]
    assert unseen["value"] == pytest.approx(0.9) and unseen["exceeded"]
    count = measures[(drift.EXAMPLES_FEATURE, drift.COUNT_RATIO)]
    assert count["exceeded"] and count["value"] == pytest.approx(58000 / 6000)
    assert "outside the range 0.2..5" in drift.describe(count)


def test_a_measure_at_its_threshold_is_not_above_it(spans):
    at = DriftThresholds(**{**configs.DRIFT_THRESHOLDS, "unseen_users": 0.9})
    users = np.concatenate([np.arange(1, 51), np.arange(5001, 5451)])
    measures = _by_feature(drift.measure(spans["natural"], spans["before"],
                                         _schema(spans["before"]), _ids(users, [1, 2]), SEEN, at))
    assert not measures[(fk.USER_ID, drift.UNSEEN)]["exceeded"]


def test_thresholds_round_trip_and_refuse_nonsense():
    assert DriftThresholds.from_json(THRESHOLDS.to_json()) == THRESHOLDS
    with pytest.raises(ValueError, match="rating_jsd"):
        DriftThresholds(**{**configs.DRIFT_THRESHOLDS, "rating_jsd": 1.5})
    with pytest.raises(ValueError, match="count ratios"):
        DriftThresholds(**{**configs.DRIFT_THRESHOLDS, "min_count_ratio": 2.0})


# ---- span resolvers ------------------------------------------------------------------------

def _examples(artifact_id, span, version):
    artifact = standard_artifacts.Examples()
    artifact.id = artifact_id
    artifact.set_int_custom_property("span", span)
    artifact.set_int_custom_property("version", version)
    return artifact


def _verdict(artifact_id, examples, statistics_id=0):
    verdict = SpanVerdict()
    verdict.id = artifact_id
    verdict.set_int_custom_property("examples_id", examples.id)
    verdict.set_int_custom_property("statistics_id", statistics_id)
    verdict.set_string_custom_property("drift", json.dumps({}))
    return verdict


def _statistics_artifact(artifact_id):
    artifact = standard_artifacts.ExampleStatistics()
    artifact.id = artifact_id
    return artifact


@pytest.fixture()
def history():
    """Spans 1-4: span 2 re-ingested as version 1; span 3 stopped by the gate (no verdict)."""
    examples = {"s1": _examples(1, 1, 0), "s2v0": _examples(2, 2, 0), "s3": _examples(3, 3, 0),
                "s2v1": _examples(4, 2, 1), "s4": _examples(5, 4, 0)}
    verdicts = [_verdict(11, examples["s1"], 21), _verdict(12, examples["s2v0"], 22),
                _verdict(14, examples["s2v1"], 24), _verdict(15, examples["s4"], 25)]
    return examples, verdicts


def test_window_takes_the_latest_validated_version_of_the_last_spans(history):
    examples, verdicts = history
    every = list(examples.values())
    assert [a.id for a in strategy.span_window(every, verdicts, 0)] == [1, 4, 5]
    assert [a.id for a in strategy.span_window(every, verdicts, 2)] == [4, 5]
    # Without span 2's second verdict its first version is the validated one.
    assert [a.id for a in strategy.span_window(every, verdicts[:2] + verdicts[3:], 0)] == [
        1, 2, 5]
    with pytest.raises(ValueError, match="num_spans"):
        strategy.SpanWindowStrategy(num_spans=-1)


def test_drift_baseline_is_the_previous_validated_span(history):
    examples, verdicts = history
    every = list(examples.values())
    statistics = [_statistics_artifact(i) for i in (21, 22, 24, 25)]
    # Span 4 is compared with span 2's latest validated version (span 3 was stopped), and
    # the ids it knows come from every validated span before it.
    resolved = strategy.drift_baseline([examples["s4"]], every, statistics, verdicts)
    assert [a.id for a in resolved[strategy.EXAMPLES_KEY]] == [1, 4]
    assert [a.id for a in resolved[strategy.STATISTICS_KEY]] == [24]
    # The first span has nothing before it.
    resolved = strategy.drift_baseline([examples["s1"]], every, statistics, verdicts)
    assert resolved[strategy.EXAMPLES_KEY] == [] and resolved[strategy.STATISTICS_KEY] == []
