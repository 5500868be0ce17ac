"""Tests of `GeneratorConfig`: validation, ML-1M-shaped scaling and GroupLens' release sizes."""

import pytest

from kiko.data import synthetic


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_users=100, n_movies=50, n_ratings=1_999), "at least 20"),
    (dict(n_users=10, n_movies=19, n_ratings=200), "too small"),
    (dict(n_users=10, n_movies=30, n_ratings=301), "exceeds"),
    (dict(noise=0.0), "noise"),
])
def test_config_rejects_impossible_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic.GeneratorConfig(**kwargs)


def test_scaled_config_is_ml1m_shaped():
    scaled = synthetic.GeneratorConfig.scaled(100_000)
    assert scaled.n_ratings == 100_000
    assert scaled.n_ratings / scaled.n_users == pytest.approx(
        synthetic.ML1M_N_RATINGS / synthetic.ML1M_N_USERS, rel=0.01)
    assert synthetic.GeneratorConfig() == synthetic.GeneratorConfig.scaled(
        synthetic.ML1M_N_RATINGS, n_movies=synthetic.ML1M_N_MOVIES)


def test_release_sizes():
    config = synthetic.GeneratorConfig.release("ml-25m")
    assert (config.n_users, config.n_movies, config.n_ratings, config.layout) == (
        162_541, 62_423, 25_000_095, "ml-csv")
    assert synthetic.GeneratorConfig.release("ml-100k").layout == "ml-100k"
    with pytest.raises(ValueError, match="unknown release 'ml-2m'"):
        synthetic.GeneratorConfig.release("ml-2m")
    with pytest.raises(ValueError, match="layout must be one of"):
        synthetic.GeneratorConfig(layout="ml-2m")
