"""Shared fixtures. Importing kiko_model first selects Keras 2 before anything loads TensorFlow."""

import kiko_model  # noqa: F401  (must stay the first import)

import os

import pytest

from kiko_model import synthetic

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "pipeline", "schema", "schema.pbtxt")


@pytest.fixture(scope="session")
def small_movielens(tmp_path_factory):
    """A small generated data set in exact ML-1M format (ratings, users, movies)."""
    out = tmp_path_factory.mktemp("small_movielens")
    return synthetic.generate(str(out), synthetic.GeneratorConfig(
        n_users=150, n_movies=200, n_ratings=9_000, seed=7))
