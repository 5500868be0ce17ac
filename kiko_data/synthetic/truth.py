"""The ground truth: everything the generator draws for a config, in a fixed stream order.

Each concern draws from its own ``numpy.random`` stream spawned from ``config.seed``, so the
same config always gives the same draws (and the same files).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kiko.data.synthetic.activity import (
    movie_popularity, select_movies, timestamps, user_activity)
from kiko.data.synthetic.catalog import draw_movies
from kiko.data.synthetic.config import GeneratorConfig
from kiko.data.synthetic.people import draw_users
from kiko.data.synthetic.preferences import GLOBAL_MEAN, latent_structure
from kiko.data.synthetic.rating_scale import calibrated_thresholds, exceedances
from kiko.data.synthetic.titles import draw_titles

_STREAMS = ("users", "movies", "titles", "structure", "activity", "selection", "noise",
            "calibration", "timestamps", "layout")


@dataclass(frozen=True)
class GroundTruth:
    """What the generator drew and the files do not hold: the model behind the ratings.

    Per-rating arrays are in the order of the generated ratings (ML-1M and ML-10M layouts write
    them in this order; the ML-100K and CSV layouts reorder their ratings file). ``mean`` is
    the latent mean ``GLOBAL_MEAN + b_u + b_m + <p_u, q_m>`` of each rating.
    """

    config: GeneratorConfig
    users: dict  # is_male, age_index, occupation, zip: per user index
    movies: dict  # ids, genres (bool [n_movies, len(GENRES)]), year: per movie index
    titles: list
    user_bias: np.ndarray  # [n_users]
    movie_bias: np.ndarray  # [n_movies]
    user_factors: np.ndarray  # [n_users, rank]
    movie_factors: np.ndarray  # [n_movies, rank]
    user_index: np.ndarray  # per rating: 0-based user index (user id - 1)
    movie_index: np.ndarray  # per rating: index into movies["ids"]
    timestamps: np.ndarray
    mean: np.ndarray
    thresholds: np.ndarray
    ratings: np.ndarray

    def expected_rating(self, mean: np.ndarray, extra_variance=0.0) -> np.ndarray:
        """E[rating | latent mean] (the Bayes predictor); ``extra_variance`` (scalar or per
        rating) adds uncertainty about the mean itself to the noise's."""
        scale = np.sqrt(self.config.noise ** 2 + np.asarray(extra_variance, dtype=float))
        levels = self.config.style.levels
        exceed = exceedances(np.asarray(mean), self.thresholds, scale)
        return levels[0] + (levels[1] - levels[0]) * exceed.sum(axis=1)


def streams(config: GeneratorConfig) -> dict:
    """The generator's independent random streams, by name, all from ``config.seed``."""
    return dict(zip(_STREAMS, (np.random.default_rng(s) for s in
                               np.random.SeedSequence(config.seed).spawn(len(_STREAMS)))))


def ground_truth(config: GeneratorConfig = GeneratorConfig()) -> GroundTruth:
    """Draw everything `generate` writes for ``config``, without writing it (deterministic)."""
    style = config.style
    rngs = streams(config)
    users = draw_users(rngs["users"], config.n_users)
    movies = draw_movies(rngs["movies"], config.n_movies)
    titles = draw_titles(rngs["titles"], movies["year"])
    user_bias, movie_bias, user_factors, movie_factors = latent_structure(
        rngs["structure"], config, users, movies)

    counts = user_activity(rngs["activity"], config)
    popularity = movie_popularity(rngs["selection"], movie_bias)
    user_index, movie_index = select_movies(rngs["selection"], counts, popularity)

    # Order each user's ratings randomly, then stamp them with increasing times.
    order = np.lexsort((rngs["timestamps"].random(len(user_index)), user_index))
    user_index, movie_index = user_index[order], movie_index[order]
    counts_by_user = np.bincount(user_index, minlength=config.n_users)
    stamps = timestamps(rngs["timestamps"], counts_by_user, style)

    mean = (GLOBAL_MEAN + user_bias[user_index] + movie_bias[movie_index]
            + np.einsum("ij,ij->i", user_factors[user_index], movie_factors[movie_index]))
    thresholds = calibrated_thresholds(
        mean, rngs["calibration"].normal(0.0, config.noise, len(mean)), style.rating_fractions)
    latent = mean + rngs["noise"].normal(0.0, config.noise, len(mean))
    ratings = style.levels[np.searchsorted(thresholds, latent, side="left")]
    return GroundTruth(config, users, movies, titles, user_bias, movie_bias, user_factors,
                       movie_factors, user_index, movie_index, stamps, mean, thresholds, ratings)
