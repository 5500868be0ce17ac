"""The model-quality benchmark's references on generated data (benchmarks/model_quality.py)."""

import numpy as np
import pytest

from kiko.data import synthetic
from tests.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def model_quality():
    return load_benchmark("model_quality")


def test_split_rows_partition_the_ratings(model_quality):
    train, test = model_quality.split_rows(1000)
    assert len(test) == 100 and len(train) == 900
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1000))
    assert np.array_equal(model_quality.split_rows(1000)[1], test)  # seeded


def test_oracle_prior_map_sits_between_the_floor_and_the_baselines(model_quality):
    truth = synthetic.ground_truth(synthetic.GeneratorConfig.scaled(60_000))
    train, test = model_quality.split_rows(len(truth.ratings))
    floor, oracle, bayes = model_quality.oracle_rows(truth, train, test, sweeps=3, samples=5)
    ratings = truth.ratings[test]
    assert floor["rmse"] == pytest.approx(
        np.sqrt(np.mean((truth.expected_rating(truth.mean[test]) - ratings) ** 2)))
    global_mean = float(np.mean(truth.ratings[train]))
    global_rmse = float(np.sqrt(np.mean((ratings - global_mean) ** 2)))
    # Estimation from 54k ratings costs something, but knowing the model beats a constant.
    assert floor["rmse"] < oracle["rmse"] < global_rmse - 0.05
    assert floor["rmse"] < bayes["rmse"] < global_rmse - 0.05 and bayes["samples"] == 5
    # More evidence per parameter (more sweeps do not add data): a larger train split helps.
    half = train[: len(train) // 2]
    _, oracle_half, _ = model_quality.oracle_rows(truth, half, test, sweeps=3, samples=1)
    assert oracle["rmse"] < oracle_half["rmse"]


def test_posterior_draws_have_the_posterior_covariance(model_quality):
    rng = np.random.default_rng(1)
    design = rng.normal(size=(40, 3))
    design[:, 1] = design[:, 0] + 0.3 * design[:, 1]  # correlated: a posterior far from round
    target = design @ np.array([0.5, -1.0, 2.0]) + rng.normal(0, 0.3, 40)
    prior_mean, prior_precision = np.zeros((1, 3)), np.eye(3) * 2.0
    entity = np.zeros(40, dtype=int)
    mean = model_quality._posterior_means(entity, 1, design, target, 0.09, prior_mean,
                                          prior_precision)[0]
    precision = design.T @ design / 0.09 + prior_precision
    assert np.allclose(mean, np.linalg.solve(precision, design.T @ target / 0.09))
    draws = np.array([model_quality._posterior_means(entity, 1, design, target, 0.09,
                                                     prior_mean, prior_precision, rng)[0]
                      for _ in range(3000)])
    assert np.allclose(draws.mean(axis=0), mean, atol=0.01)
    covariance = np.linalg.inv(precision)
    assert abs(covariance[0, 1]) > 0.5 * np.sqrt(covariance[0, 0] * covariance[1, 1])
    assert np.allclose(np.cov(draws.T), covariance, rtol=0.1,
                       atol=0.1 * covariance.diagonal().min())
