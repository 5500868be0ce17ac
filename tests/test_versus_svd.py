"""The pure parts of the pipeline-versus-SVD benchmark (benchmarks/versus_svd.py): the columns
handed to Surprise, the scores, the ratio and the summary, and a tiny fit of the tuned SVD."""

import math

import numpy as np
import pytest

from kiko.model import features as fk
from tests.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("versus_svd")


def _columns(users, movies, ratings):
    return {fk.USER_ID: np.array(users, np.int64), fk.MOVIE_ID: np.array(movies, np.int64),
            fk.RATING: np.array(ratings, np.float32),
            fk.TIMESTAMP: np.arange(len(users), dtype=np.int64)}


def test_columns_become_surprise_frame_and_testset(bench):
    columns = _columns([7, 7, 3], [11, 2, 11], [4.0, 1.0, 5.0])
    frame = bench.surprise_frame(columns)
    assert list(frame.columns) == ["user", "item", "rating"]  # the order load_from_df reads
    assert frame.values.tolist() == [[7, 11, 4.0], [7, 2, 1.0], [3, 11, 5.0]]
    testset = bench.surprise_testset(columns)
    assert testset == [(7, 11, 4.0), (7, 2, 1.0), (3, 11, 5.0)]
    assert all(type(u) is int and type(m) is int and type(r) is float for u, m, r in testset)
    assert bench.rating_scale(columns) == (1.0, 5.0)


def test_scores_and_ratio(bench):
    found = bench.scores([3.0, 4.0, 2.0, 5.0], [4.0, 4.0, 4.0, 4.0])
    assert found["rmse"] == pytest.approx(math.sqrt((1 + 0 + 4 + 1) / 4))
    assert found["mae"] == pytest.approx(1.0) and found["examples"] == 4
    with pytest.raises(ValueError, match="no predictions"):
        bench.scores([], [])
    assert bench.ratio(120.0, 30.0) == pytest.approx(4.0)
    assert bench.ratio(None, 30.0) is None and bench.ratio(120.0, 0.0) is None


def _round(pipeline_s, svd_s, rmse, trainer_s):
    return {"pipeline_s": pipeline_s, "ratio": pipeline_s / svd_s,
            "components_s": {"Trainer": trainer_s},
            "pipeline": {"rmse": rmse, "mae": rmse * 0.8},
            "svd": {"seconds": svd_s, "rmse": rmse + 0.01, "mae": 0.7}}


def test_summary_takes_medians_and_judges_the_target(bench):
    rounds = [_round(100.0, 25.0, 0.85, 50.0), _round(90.0, 30.0, 0.86, 40.0),
              _round(130.0, 25.0, 0.84, 60.0)]
    summary = bench.summarise(rounds, target=4.0)
    assert summary["ratio"] == {"median": pytest.approx(4.0), "min": pytest.approx(3.0),
                                "max": pytest.approx(5.2)}
    assert summary["pipeline_s"]["median"] == 100.0 and summary["svd_s"]["median"] == 25.0
    assert summary["pipeline_rmse"]["median"] == pytest.approx(0.85)
    assert summary["svd_rmse"]["median"] == pytest.approx(0.86)
    assert summary["components_s"]["Trainer"] == {"median": 50.0, "min": 40.0, "max": 60.0}
    assert summary["met"] is True and summary["rounds"] == 3  # at the target counts as met
    assert bench.summarise(rounds, target=3.5)["met"] is False
    assert bench.summarise([])["met"] is None  # nothing measured is neither met nor missed
    assert "median ratio 4.00 (range 3.00-5.20)" in bench.markdown(
        [], bench.summarise(rounds, target=4.0))


def test_tuned_svd_fits_and_scores_a_tiny_split(bench):
    rng = np.random.default_rng(0)
    users, movies = rng.integers(1, 30, 600), rng.integers(1, 40, 600)
    ratings = np.clip(np.round(3 + 0.05 * (users % 5) - 0.04 * (movies % 7)
                               + rng.normal(0, 0.7, 600)), 1, 5)
    train = _columns(users[:500], movies[:500], ratings[:500])
    evaluation = _columns(users[500:], movies[500:], ratings[500:])
    found = bench.fit_and_score(train, evaluation)
    assert found["examples"] == 100 and found["train_examples"] == 500
    assert math.isfinite(found["rmse"]) and 0 < found["mae"] <= found["rmse"] < 2.0
    assert found["seconds"] == pytest.approx(
        found["trainset_s"] + found["fit_s"] + found["predict_s"])
    # Seeded: the same split gives the same scores.
    assert bench.fit_and_score(train, evaluation)["rmse"] == found["rmse"]
