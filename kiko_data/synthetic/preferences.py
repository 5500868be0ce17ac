"""What each user thinks of each movie: biases and taste factors, shaped by side features.

The latent mean of a rating is ``GLOBAL_MEAN + b_u + b_m + <p_u, q_m>``. Biases come from
demographics, genres and year plus individual parts; factors mix side-feature embeddings
(their shares of the variance in ``USER_FACTOR_SHARES``/``MOVIE_FACTOR_SHARES``) with an
individual part, two of them planted as interpretable gender x genre and age x genre axes.
"""

from __future__ import annotations

import math

import numpy as np

from kiko.data.synthetic.config import GeneratorConfig
from kiko.data.synthetic.marginals import (
    AGE_CODES, AGE_COUNTS, GENRE_COUNTS, GENRE_MEAN_RATINGS, GENRES, LAST_YEAR, MALE_FRACTION,
    N_OCCUPATIONS, normalized)

# Variance budget of the latent rating, in rating units.
GLOBAL_MEAN = 3.58
USER_BIAS_STD = 0.38
MOVIE_BIAS_STD = 0.40
_AGE_BIAS = (-0.10, -0.12, -0.05, 0.03, 0.07, 0.14, 0.22)  # by AGE_CODES
_GENDER_BIAS = {"F": 0.05, "M": -0.02}
_OCCUPATION_BIAS_STD = 0.07
_YEAR_BIAS_PER_YEAR = 0.005  # older movies in the catalogue are the better-remembered ones
_GENRE_BIAS_SHRINK = 0.8
# Shares of the variance of p_u and q_m that are explained by side information.
USER_FACTOR_SHARES = {"gender": 0.20, "age": 0.15, "occupation": 0.10, "individual": 0.55}
MOVIE_FACTOR_SHARES = {"genres": 0.45, "year": 0.10, "individual": 0.45}
# Two planted, interpretable taste axes (genre loadings in GENRES order): axis 0 is what women
# like more than men (romance, musicals vs action, war, sci-fi), axis 1 what older users like
# more than younger ones (film-noir, war, westerns vs horror, animation). Users load on axis 0
# by gender and on axis 1 by age; the other axes are random.
_GENDER_TASTE_AXIS = (-1.0, -0.5, 0.3, 0.5, 0.2, -0.3, 0.1, 0.5, 0.1, -0.2, -0.5, 0.9, 0.1, 1.0,
                      -0.7, -0.3, -0.7, -0.6)
_AGE_TASTE_AXIS = (-0.3, 0.0, -0.6, -0.3, -0.4, 0.1, 0.5, 0.5, -0.3, 0.9, -0.8, 0.6, 0.4, 0.2,
                   -0.4, -0.1, 0.8, 0.7)
# Term k of <p_u, q_m> has variance proportional to _SPECTRUM_DECAY ** k: a decaying spectrum
# like real rating matrices', so the leading taste dimensions are the easiest to learn.
_SPECTRUM_DECAY = 0.6


def _embeddings(rng: np.random.Generator, shares: dict, sizes: dict, rank: int) -> dict:
    """Random embedding tables, each scaled so its entries carry its share of the variance."""
    return {name: rng.normal(0.0, math.sqrt(shares[name]), (sizes[name], rank))
            for name in sizes}


def _standardized(values, weights) -> np.ndarray:
    """Values shifted and scaled to weighted mean 0 and weighted RMS 1."""
    values, weights = np.asarray(values, dtype=float), normalized(weights)
    centred = values - weights @ values
    return centred / math.sqrt(weights @ centred ** 2)


def _plant_taste_axes(user_tables: dict, movie_tables: dict, rank: int) -> None:
    """Overwrite factor 0 (gender x genre) and factor 1 (age x genre) with the planted axes.

    Each planted column keeps its table's variance share, so the variance budget is unchanged.
    """
    axes = [("gender", [1.0 - MALE_FRACTION, MALE_FRACTION], (1.0, 0.0), _GENDER_TASTE_AXIS),
            ("age", AGE_COUNTS, np.arange(len(AGE_CODES)), _AGE_TASTE_AXIS)]
    for k, (table, weights, positions, loadings) in enumerate(axes[:rank]):
        user_tables[table][:, k] = math.sqrt(USER_FACTOR_SHARES[table]) * _standardized(
            positions, weights)
        movie_tables["genres"][:, k] = math.sqrt(MOVIE_FACTOR_SHARES["genres"]) * (
            _standardized(loadings, GENRE_COUNTS))


def latent_structure(rng: np.random.Generator, config: GeneratorConfig, users: dict,
                     movies: dict) -> tuple:
    """User and movie biases and factors (biases in rating units, <p, q> with std set)."""
    n_users, n_movies, rank = config.n_users, config.n_movies, config.rank
    gender_index = users["is_male"].astype(int)  # 0 = F, 1 = M

    occupation_bias = rng.normal(0.0, _OCCUPATION_BIAS_STD, N_OCCUPATIONS)
    gender_bias = np.array([_GENDER_BIAS["F"], _GENDER_BIAS["M"]])
    user_bias = (np.asarray(_AGE_BIAS)[users["age_index"]] + gender_bias[gender_index]
                 + occupation_bias[users["occupation"]]
                 + rng.normal(0.0, USER_BIAS_STD, n_users))

    genres = movies["genres"].astype(float)
    genre_weights = genres / genres.sum(axis=1, keepdims=True)
    genre_bias = _GENRE_BIAS_SHRINK * (np.asarray(GENRE_MEAN_RATINGS) - GLOBAL_MEAN)
    age_of_movie = (LAST_YEAR - movies["year"]).astype(float)
    movie_bias = (genre_weights @ genre_bias + _YEAR_BIAS_PER_YEAR * age_of_movie
                  + rng.normal(0.0, MOVIE_BIAS_STD, n_movies))
    movie_bias -= (_YEAR_BIAS_PER_YEAR * age_of_movie).mean()

    u = _embeddings(rng, USER_FACTOR_SHARES,
                    dict(gender=2, age=len(AGE_CODES), occupation=N_OCCUPATIONS,
                         individual=n_users), rank)
    m = _embeddings(rng, MOVIE_FACTOR_SHARES,
                    dict(genres=len(GENRES), year=1, individual=n_movies),
                    rank)
    _plant_taste_axes(u, m, rank)
    user_factors = (u["gender"][gender_index] + u["age"][users["age_index"]]
                    + u["occupation"][users["occupation"]] + u["individual"])
    year_z = (age_of_movie - 15.0) / 15.0
    movie_factors = (genre_weights @ m["genres"] * np.sqrt(genres.sum(axis=1, keepdims=True))
                     + year_z[:, None] * m["year"] + m["individual"])

    spectrum = _SPECTRUM_DECAY ** (np.arange(rank) / 4.0)
    user_factors = user_factors * spectrum
    movie_factors = movie_factors * spectrum
    # Var over uniform (u, m) of <p_u, q_m> = tr(Sp Sq) - (mean p . mean q)^2, Sp = P'P / n.
    second_p = user_factors.T @ user_factors / n_users
    second_q = movie_factors.T @ movie_factors / n_movies
    variance = float(np.sum(second_p * second_q)
                     - (user_factors.mean(axis=0) @ movie_factors.mean(axis=0)) ** 2)
    scale = math.sqrt(config.interaction_std / math.sqrt(variance)) if variance > 0 else 0.0
    return user_bias, movie_bias, user_factors * scale, movie_factors * scale
