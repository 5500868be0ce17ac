"""Synthetic MovieLens-1M: data in the exact ml-1m file format, with a known ground truth.

MovieLens itself may not be redistributed, so this generator is the pipeline's embedded default
data set. It writes ``ratings.dat``, ``users.dat`` and ``movies.dat`` (latin-1, ``::``-separated,
LF line ends) exactly as GroupLens ships them, plus ``generator.json`` (the `GenerationReport`).
Because the generative model is known, the report states the *noise floor*: the RMSE that the
Bayes-optimal predictor reaches, the yardstick for every model trained on the data.

Generative model (all draws from ``numpy.random`` streams spawned from ``config.seed``):

* Users: gender (~72 % M), age code in {1, 18, 25, 35, 45, 50, 56} and occupation 0..20 with
  ML-1M's proportions (under-18 users are mostly K-12 students, many 56+ users retired); a
  zip code made of a clustered 3-digit prefix and 2 digits, ~1 % with a ``-dddd`` suffix.
* Movies: ids are a sorted sample of 1..~1.018 * n_movies (gaps, as in ML-1M's 1..3952);
  1-3 genres drawn from `GENRES` with ML-1M's genre frequencies; a year in
  1919..2000 with ML-1M's recent-skewed year histogram; a title built from word lists, with
  ML-1M's shapes (moved articles ``Noun, The``, accented foreign titles ``Misérables, Les``,
  alternative titles in inner parentheses, commas, colons, sequels).
* Latent rating of user u for movie m, in rating units::

      latent = GLOBAL_MEAN + b_u + b_m + <p_u, q_m> + eps,   eps ~ N(0, noise^2)

  - ``b_u`` = age effect + gender effect + occupation effect + N(0, USER_BIAS_STD^2);
  - ``b_m`` = mean genre effect (ML-1M's per-genre mean ratings, shrunk) + an older-is-better
    year effect + N(0, MOVIE_BIAS_STD^2);
  - ``p_u`` (dimension ``rank``) = gender, age and occupation embeddings (~45 % of its
    variance) + an individual part; ``q_m`` = mean of its genres' embeddings and a year
    direction (~55 %) + an individual part. Factor 0 is a planted gender x genre axis (women
    rate romance and musicals higher, men action, war and sci-fi), factor 1 an age x genre
    axis (older users: film-noir, war, westerns; younger: horror, animation); the others are
    random. So demographics shift both the mean rating and the genre preferences, and
    genres/year shift both quality and taste. Factor k's term has variance proportional to
    0.6 ** k (a decaying spectrum, as in real rating matrices), and P and Q are rescaled
    together so that ``<p_u, q_m>`` has standard deviation ``interaction_std``.
* Rating = 1 + #{k : t_k < latent}. The four thresholds t_1 < ... < t_4 are the quantiles of
  ``mean + eps'`` over the sampled pairs, with ``eps'`` an independent copy of the noise, at
  ML-1M's cumulative rating fractions (1: 5.62 %, 2: 10.75 %, 3: 26.11 %, 4: 34.89 %,
  5: 22.63 %). The thresholds are then fixed constants independent of the ratings' noise, and
  the histogram matches ML-1M's up to sampling error.
* Who rates what: every user rates at least MIN_RATINGS_PER_USER movies; activity above that is
  log-normal (median ~95, long tail, soft-capped at ML-1M's maximum of 2,314 or the catalogue
  size), scaled so the total is exactly ``n_ratings``. Each user picks distinct movies by
  popularity-weighted sampling without replacement (an exponential race); log popularity is
  a steep function of a Gaussian below its median (obscure movies, some never rated) and
  saturates above it (the most rated movie is seen by ~60 % of users), mildly correlated with
  the movie bias (good movies are seen more), tuned so that ~3,706 of 3,883 movies get a
  rating at the default size, median ~130 ratings per rated movie. Selection does not depend on
  the user's own taste or noise, so the pairs are missing at random given popularity.
* Timestamps: each user starts in ML-1M's window (956703932 .. 1046454590, most users in
  2000); ratings follow in sessions (seconds apart, with occasional gaps of days to months),
  so each user's timestamps are clustered (~88 % of ratings fall in 2000). ``ratings.dat`` is
  sorted by user, then timestamp (ML-1M's own file is sorted by user only).

Noise floor: with mean ``mu = latent - eps``, ``P(rating > k | mu) = Phi((mu - t_k) / noise)``
so the Bayes-optimal (MSE) predictor is ``E[rating | mu] = 1 + sum_k Phi((mu - t_k) / noise)``.
The report gives its RMSE and MAE over the generated ratings, its expected RMSE
``sqrt(mean Var(rating | mu))``, the RMSE of the undiscretized mean ``clip(mu, 1, 5)`` and of
the global mean, for reference. Defaults put the noise floor near real ML-1M's best RMSEs
(~0.82) while the planted low-rank signal stays learnable from 90 % of the ratings.

Everything is deterministic: the same config gives byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from kiko_data.movielens import LAYOUTS, RELEASE_LAYOUTS, ml100k, ml10m, ml1m, ml20m

GENERATOR_VERSION = 2
REPORT_FILE = "generator.json"
# The genres of ML-1M's movies.dat, in its README's order (the generator's vocabulary).
GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western")

ML1M_N_USERS = 6040
ML1M_N_MOVIES = 3883
ML1M_N_RATINGS = 1_000_209
ML1M_MAX_MOVIE_ID = 3952
ML1M_FIRST_TIMESTAMP = 956703932
ML1M_LAST_TIMESTAMP = 1046454590
# Marginal rating histogram of ML-1M, ratings 1..5.
ML1M_RATING_FRACTIONS = (0.0562, 0.1075, 0.2611, 0.3489, 0.2263)

MIN_RATINGS_PER_USER = 20  # ML-1M's guarantee
MAX_RATINGS_PER_USER = 2314  # ML-1M's most active user

AGE_CODES = (1, 18, 25, 35, 45, 50, 56)
_AGE_COUNTS = (222, 1103, 2096, 1193, 550, 496, 380)
N_OCCUPATIONS = 21
_OCCUPATION_COUNTS = (711, 528, 267, 173, 759, 112, 236, 679, 17, 92, 195, 129, 388, 142, 302,
                      144, 241, 502, 70, 72, 281)
_K12_STUDENT, _RETIRED, _OTHER_OCCUPATION = 10, 13, 0
MALE_FRACTION = 4331 / 6040

# Genre frequencies of ML-1M's movies.dat, in GENRE_VOCABULARY order.
_GENRE_COUNTS = (503, 283, 105, 251, 1200, 211, 127, 1603, 68, 44, 343, 114, 106, 471, 276, 492,
                 143, 68)
# ML-1M's mean rating per genre, in GENRE_VOCABULARY order (shrunk into genre bias effects).
_GENRE_MEAN_RATINGS = (3.49, 3.48, 3.68, 3.42, 3.52, 3.71, 3.93, 3.77, 3.45, 4.08, 3.22, 3.67,
                       3.67, 3.61, 3.47, 3.57, 3.89, 3.64)
_GENRES_PER_MOVIE_P = (0.5, 0.35, 0.15)

FIRST_YEAR, LAST_YEAR = 1919, 2000
# ML-1M-like counts of movies: per year for 1991..2000, per decade before.
_RECENT_YEAR_COUNTS = {2000: 156, 1999: 283, 1998: 337, 1997: 315, 1996: 345, 1995: 342,
                       1994: 257, 1993: 165, 1992: 102, 1991: 60}
_DECADE_COUNTS = {1990: 77, 1980: 600, 1970: 250, 1960: 190, 1950: 160, 1940: 130, 1930: 100,
                  1920: 35, 1910: 3}

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
_USER_FACTOR_SHARES = {"gender": 0.20, "age": 0.15, "occupation": 0.10, "individual": 0.55}
_MOVIE_FACTOR_SHARES = {"genres": 0.45, "year": 0.10, "individual": 0.45}
# Two planted, interpretable taste axes (genre loadings in GENRE_VOCABULARY order): axis 0 is
# what women like more than men (romance, musicals vs action, war, sci-fi), axis 1 what older
# users like more than younger ones (film-noir, war, westerns vs horror, animation). Users load
# on axis 0 by gender and on axis 1 by age; the other axes are random.
_GENDER_TASTE_AXIS = (-1.0, -0.5, 0.3, 0.5, 0.2, -0.3, 0.1, 0.5, 0.1, -0.2, -0.5, 0.9, 0.1, 1.0,
                      -0.7, -0.3, -0.7, -0.6)
_AGE_TASTE_AXIS = (-0.3, 0.0, -0.6, -0.3, -0.4, 0.1, 0.5, 0.5, -0.3, 0.9, -0.8, 0.6, 0.4, 0.2,
                   -0.4, -0.1, 0.8, 0.7)
# Term k of <p_u, q_m> has variance proportional to _SPECTRUM_DECAY ** k: a decaying spectrum
# like real rating matrices', so the leading taste dimensions are the easiest to learn.
_SPECTRUM_DECAY = 0.6

# Activity and popularity shape.
_ACTIVITY_LOG_STD = 1.2
_ACTIVITY_FLOOR_WEIGHT = 0.08  # users below it (~2 %) give exactly MIN_RATINGS_PER_USER
# log popularity = f(z), z ~ N(0, 1): slope _POPULARITY_LEFT_SLOPE below 0 (a long tail of
# obscure movies, some never rated), saturating at _POPULARITY_RIGHT_MAX above (no movie is
# seen by everybody; ML-1M's most rated is rated by 57 % of users).
_POPULARITY_LEFT_SLOPE = 2.9
_POPULARITY_RIGHT_MAX = 6.5
_POPULARITY_RIGHT_SCALE = 3.5
_POPULARITY_QUALITY_CORRELATION = 0.35
_ZIP_SUFFIX_FRACTION = 0.012
_N_ZIP_PREFIXES = 600

# Timestamps: users start in 2000 mostly; sessions of seconds-apart ratings.
_YEAR_2001 = 978307200
_LATE_STARTER_FRACTION = 0.1
_RATING_GAP_MEAN_S = 30.0
_SESSION_BREAK_P = 0.01
_SESSION_BREAK_MEAN_S = 5 * 86400.0

_STREAMS = ("users", "movies", "titles", "structure", "activity", "selection", "noise",
            "calibration", "timestamps", "layout")

# ML-25M's rating histogram, 0.5 .. 5.0 in half stars (the half-star layouts').
HALF_STAR_RATING_FRACTIONS = (0.0157, 0.0311, 0.0160, 0.0656, 0.0505, 0.1959, 0.1271, 0.2656,
                              0.0880, 0.1445)


@dataclass(frozen=True)
class LayoutStyle:
    """What a generated data set of one layout looks like besides its file format."""

    half_stars: bool
    first_timestamp: int
    last_timestamp: int
    early_starters_until: int  # most users start between first_timestamp and this

    @property
    def rating_fractions(self) -> tuple:
        return HALF_STAR_RATING_FRACTIONS if self.half_stars else ML1M_RATING_FRACTIONS

    @property
    def levels(self) -> np.ndarray:
        """The rating values, lowest first."""
        k = len(self.rating_fractions)
        return np.arange(1, k + 1) / 2.0 if self.half_stars else np.arange(1.0, k + 1)


# Per layout (kiko_data.movielens's names): ML-100K's 1997-98 and ML-1M's 2000-03 whole stars,
# ML-10M's and the CSV releases' half stars over their longer windows.
LAYOUT_STYLES = {
    ml100k.LAYOUT.name: LayoutStyle(False, 874724710, 893286638, 893286638 - 86400),
    ml1m.LAYOUT.name: LayoutStyle(False, ML1M_FIRST_TIMESTAMP, ML1M_LAST_TIMESTAMP, _YEAR_2001),
    ml10m.LAYOUT.name: LayoutStyle(True, 789652009, 1231131736, 1231131736 - 86400),
    ml20m.LAYOUT.name: LayoutStyle(True, 789652009, 1574327703, 1574327703 - 86400),
}
# Sizes of GroupLens' releases (users, movies in the movies file, ratings), for --size.
RELEASE_SIZES = {
    "ml-100k": (943, 1682, 100_000), "ml-1m": (6040, 3883, 1_000_209),
    "ml-10m": (69_878, 10_681, 10_000_054), "ml-20m": (138_493, 27_278, 20_000_263),
    "ml-25m": (162_541, 62_423, 25_000_095), "ml-32m": (200_948, 87_585, 32_000_204),
    "ml-latest-small": (610, 9742, 100_836),
}
# Titles in scripts latin-1 cannot encode, for the UTF-8 layouts (ML-10M and later).
_UTF8_ORIGINAL_TITLES = ("千と千尋の神隠し", "Амели с Монмартра", "Ο Θίασος", "올드보이",
                         "Ödön & Şükrü", "Cidade de Deus — Rio")


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate: sizes, the planted signal and the seed (same config, same bytes).

    Defaults are ML-1M's sizes. ``noise`` is the standard deviation of the Gaussian noise on the
    latent rating and ``interaction_std`` that of the planted rank-``rank`` term, both in rating
    units; together they set the noise floor (~0.825 RMSE at the defaults).
    """

    n_users: int = ML1M_N_USERS
    n_movies: int = ML1M_N_MOVIES
    n_ratings: int = ML1M_N_RATINGS
    rank: int = 8
    noise: float = 0.7
    interaction_std: float = 0.4
    seed: int = 0
    layout: str = ml1m.LAYOUT.name  # the files' layout (kiko_data.movielens.LAYOUTS)

    def __post_init__(self) -> None:
        for name in ("n_users", "n_movies", "n_ratings", "rank", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"GeneratorConfig.{name} must be an int, got {value!r}")
            object.__setattr__(self, name, int(value))  # plain ints for JSON and equality
        for name in ("noise", "interaction_std"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.layout not in LAYOUT_STYLES:
            raise ValueError(f"GeneratorConfig.layout must be one of {sorted(LAYOUT_STYLES)}, "
                             f"got {self.layout!r}")
        if self.n_users < 1 or self.rank < 1 or self.seed < 0:
            raise ValueError("GeneratorConfig needs n_users >= 1, rank >= 1 and seed >= 0")
        if self.n_movies < MIN_RATINGS_PER_USER:
            raise ValueError(
                f"n_movies={self.n_movies} is too small: every user rates at least "
                f"{MIN_RATINGS_PER_USER} distinct movies, as in ML-1M")
        if self.n_ratings < MIN_RATINGS_PER_USER * self.n_users:
            raise ValueError(
                f"n_ratings={self.n_ratings} is too small for n_users={self.n_users}: every "
                f"user rates at least {MIN_RATINGS_PER_USER} movies (ML-1M's guarantee), so "
                f"n_ratings must be >= {MIN_RATINGS_PER_USER * self.n_users}; lower n_users "
                "or raise n_ratings")
        cap = self.max_ratings_per_user
        if self.n_ratings > cap * self.n_users:
            raise ValueError(
                f"n_ratings={self.n_ratings} exceeds what n_users={self.n_users} can give "
                f"with at most {cap} distinct movies each ({cap * self.n_users})")
        if not (self.noise > 0 and math.isfinite(self.noise)):
            raise ValueError(f"noise must be a positive number, got {self.noise!r}")
        if not (self.interaction_std >= 0 and math.isfinite(self.interaction_std)):
            raise ValueError(
                f"interaction_std must be a non-negative number, got {self.interaction_std!r}")

    @property
    def max_ratings_per_user(self) -> int:
        """Most ratings one user can give: ML-1M's maximum, or the whole catalogue."""
        return min(MAX_RATINGS_PER_USER, self.n_movies)

    @classmethod
    def small(cls, seed: int = 0, **overrides) -> "GeneratorConfig":
        """A tiny data set for unit tests: 100 users, 120 movies, 6,000 ratings."""
        values = dict(n_users=100, n_movies=120, n_ratings=6_000, seed=seed)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def release(cls, name: str, seed: int = 0, **overrides) -> "GeneratorConfig":
        """The size of GroupLens' release `name` (RELEASE_SIZES), in that release's layout."""
        if name not in RELEASE_SIZES:
            raise ValueError(f"unknown release {name!r}; known: {', '.join(RELEASE_SIZES)}")
        n_users, n_movies, n_ratings = RELEASE_SIZES[name]
        values = dict(n_users=n_users, n_movies=n_movies, n_ratings=n_ratings, seed=seed,
                      layout=RELEASE_LAYOUTS[name])
        values.update(overrides)
        return cls(**values)

    @property
    def style(self) -> LayoutStyle:
        return LAYOUT_STYLES[self.layout]

    @classmethod
    def scaled(cls, n_ratings: int, seed: int = 0, **overrides) -> "GeneratorConfig":
        """An ML-1M-shaped data set with ``n_ratings`` ratings.

        Users scale with the number of ratings (so ~166 ratings per user, as in ML-1M) and
        movies with its square root (a denser matrix than ML-1M's, as in ML-100K).
        """
        fraction = n_ratings / ML1M_N_RATINGS
        n_users = max(1, min(round(ML1M_N_USERS * fraction), n_ratings // MIN_RATINGS_PER_USER))
        n_movies = max(2 * MIN_RATINGS_PER_USER, round(ML1M_N_MOVIES * math.sqrt(fraction)))
        values = dict(n_users=n_users, n_movies=n_movies, n_ratings=n_ratings, seed=seed)
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict:
        """The config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GeneratorConfig":
        """The inverse of `to_dict` (unknown keys are an error)."""
        return cls(**values)


@dataclass(frozen=True)
class GenerationReport:
    """What `generate` wrote and the ground truth needed to judge models trained on it.

    ``noise_floor_rmse``/``noise_floor_mae`` are those of the Bayes-optimal predictor
    E[rating | user, movie] over the generated ratings; ``noise_floor_rmse_expected`` is its
    population RMSE sqrt(mean Var(rating | mean)); ``latent_mean_rmse`` is the RMSE of the
    undiscretized latent mean clipped to [1, 5], ``global_mean_rmse`` that of the mean rating.
    ``thresholds`` and ``config.noise`` are all it takes to recompute the floor from the means.
    """

    config: GeneratorConfig
    out_dir: str
    ratings_path: str
    users_path: Optional[str]  # None when the layout has no users file
    movies_path: str
    n_ratings: int
    n_users: int
    n_movies: int
    n_movies_rated: int
    rating_histogram: dict  # rating (1.0 .. 5.0, or 0.5 .. 5.0 in half stars) -> count
    thresholds: tuple
    noise_floor_rmse: float
    noise_floor_mae: float
    noise_floor_rmse_expected: float
    latent_mean_rmse: float
    global_mean_rmse: float
    min_user_ratings: int
    max_user_ratings: int
    first_timestamp: int
    last_timestamp: int
    file_sizes: dict  # file name -> bytes, of every file written
    generator_version: int = GENERATOR_VERSION

    @property
    def rating_fractions(self) -> dict:
        """Rating -> fraction of all ratings."""
        return {k: v / self.n_ratings for k, v in self.rating_histogram.items()}

    def to_json_dict(self) -> dict:
        """JSON-ready form; file paths are stored relative to the output folder."""
        values = dataclasses.asdict(self)
        values["config"] = self.config.to_dict()
        values["rating_histogram"] = {f"{k:g}": v for k, v in self.rating_histogram.items()}
        values["thresholds"] = list(self.thresholds)
        del values["out_dir"]
        for key in ("ratings_path", "users_path", "movies_path"):
            if values[key] is not None:
                values[key] = os.path.basename(values[key])
        return values

    @classmethod
    def from_json_dict(cls, values: dict, out_dir: str | os.PathLike) -> "GenerationReport":
        """The inverse of `to_json_dict`, with paths resolved against ``out_dir``."""
        values = dict(values)
        out_dir = os.path.abspath(out_dir)
        values["config"] = GeneratorConfig.from_dict(values["config"])
        values["rating_histogram"] = {float(k): v
                                      for k, v in values["rating_histogram"].items()}
        values["thresholds"] = tuple(values["thresholds"])
        values["out_dir"] = out_dir
        for key in ("ratings_path", "users_path", "movies_path"):
            if values[key] is not None:
                values[key] = os.path.join(out_dir, values[key])
        return cls(**values)


def _normalized(weights) -> np.ndarray:
    """Weights scaled to sum to 1 (a probability vector)."""
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()


# ---------------------------------------------------------------------------------------------
# Users, movies, titles.


def _draw_users(rng: np.random.Generator, n_users: int) -> dict:
    """Demographics with ML-1M's marginals (and its age/occupation coupling) and zip codes."""
    is_male = rng.random(n_users) < MALE_FRACTION
    age_index = rng.choice(len(AGE_CODES), n_users, p=_normalized(_AGE_COUNTS))
    occupation = rng.choice(N_OCCUPATIONS, n_users, p=_normalized(_OCCUPATION_COUNTS))
    coupling = rng.random(n_users)
    occupation[(age_index == 0) & (coupling < 0.8)] = _K12_STUDENT
    occupation[(age_index >= 2) & (occupation == _K12_STUDENT)] = _OTHER_OCCUPATION
    occupation[(age_index == 6) & (coupling < 0.4)] = _RETIRED
    occupation[(age_index <= 3) & (occupation == _RETIRED)] = _OTHER_OCCUPATION

    prefixes = rng.permutation(1000)[:_N_ZIP_PREFIXES]
    prefix_p = _normalized(1.0 / np.arange(1, _N_ZIP_PREFIXES + 1) ** 0.8)
    prefix = prefixes[rng.choice(_N_ZIP_PREFIXES, n_users, p=prefix_p)]
    rest = rng.integers(0, 100, n_users)
    has_suffix = rng.random(n_users) < _ZIP_SUFFIX_FRACTION
    suffix = rng.integers(0, 10_000, n_users)
    zips = [f"{a:03d}{b:02d}-{c:04d}" if s else f"{a:03d}{b:02d}"
            for a, b, s, c in zip(prefix.tolist(), rest.tolist(), has_suffix.tolist(),
                                  suffix.tolist())]
    return dict(is_male=is_male, age_index=age_index, occupation=occupation, zip=zips)


def _year_probabilities() -> np.ndarray:
    """P(year) for FIRST_YEAR..LAST_YEAR, shaped like ML-1M's movie years."""
    years = np.arange(FIRST_YEAR, LAST_YEAR + 1)
    weights = np.zeros(len(years))
    for i, year in enumerate(years):
        if year in _RECENT_YEAR_COUNTS:
            weights[i] = _RECENT_YEAR_COUNTS[year]
        else:
            decade = year // 10 * 10
            in_decade = [y for y in years if y // 10 * 10 == decade and y not in
                         _RECENT_YEAR_COUNTS]
            weights[i] = _DECADE_COUNTS[decade] / len(in_decade)
    return _normalized(weights)


def _draw_movies(rng: np.random.Generator, n_movies: int) -> dict:
    """Movie ids (with ML-1M-like gaps), years and genre sets."""
    max_id = max(n_movies, round(n_movies * ML1M_MAX_MOVIE_ID / ML1M_N_MOVIES))
    ids = np.sort(rng.choice(np.arange(1, max_id + 1), n_movies, replace=False))
    year = FIRST_YEAR + rng.choice(LAST_YEAR - FIRST_YEAR + 1, n_movies, p=_year_probabilities())
    n_genres = 1 + rng.choice(len(_GENRES_PER_MOVIE_P), n_movies, p=_GENRES_PER_MOVIE_P)
    # Weighted sampling without replacement: the n_genres smallest of Exp(1) / weight.
    race = rng.standard_exponential((n_movies, len(GENRES)))
    race /= np.asarray(_GENRE_COUNTS, dtype=float)
    order = np.argsort(race, axis=1)
    genres = np.zeros((n_movies, len(GENRES)), dtype=bool)
    chosen = np.arange(genres.shape[1])[None, :] < n_genres[:, None]
    genres[np.nonzero(chosen)[0], order[chosen]] = True
    return dict(ids=ids, year=year, genres=genres)


_ADJECTIVES = (
    "Lost", "Silent", "Last", "Broken", "Golden", "Dark", "Wild", "Secret", "Little", "Sweet",
    "Bitter", "Crimson", "Hidden", "Eternal", "Fallen", "Blue", "Midnight", "Frozen", "Burning",
    "Lonely", "Strange", "Brave", "Quiet", "Savage", "Electric", "Dangerous", "Perfect",
    "Endless", "Naked", "Sacred", "Crazy", "Invisible", "American", "Big", "Long", "Deadly")
_NOUNS = (
    "City", "River", "Heart", "Night", "Summer", "Road", "Kingdom", "Dream", "Stranger",
    "Garden", "Island", "Shadow", "Storm", "Game", "Mirror", "Angel", "Train", "Harvest",
    "Empire", "Journey", "Window", "Circus", "Ocean", "Forest", "Bride", "Soldier", "Detective",
    "Machine", "Letter", "Hunter", "Sister", "Thief", "Promise", "Winter", "Voyage", "Mountain",
    "Ghost", "Stone", "Widow", "Prophet", "Highway", "Planet", "Dragon", "Affair", "Party")
_NAMES = (
    "Jack", "Mary", "Sam", "Lola", "Bobby", "Harry", "Dolores", "Max", "Rosa", "Billy", "Amélie",
    "José", "Jürgen", "Zoë", "Björn", "Inés", "François", "Chloé", "Muriel", "Otis")
# Foreign titles (latin-1 only), with the article that ML-1M moves to the end.
_FOREIGN_TITLES = (
    ("Misérables", "Les"), ("Enfants du paradis", "Les"), ("Vie rêvée des anges", "La"),
    ("Niño del sol", "El"), ("Mädchen in Uniform", ""), ("Café des étoiles", "Le"),
    ("Amour fou", "L'"), ("Corazón salvaje", ""), ("Über den Wolken", ""),
    ("Ciudad perdida", "La"), ("Été meurtrier", "L'"), ("Señora de la noche", "La"),
    ("Götterdämmerung", ""), ("Année dernière à Marienbad", "L'"), ("Noël à Paris", ""),
    ("Fräulein Else", ""), ("Garçon boucher", "Le"), ("Año del diluvio", "El"),
    ("Blaue Engel", "Der"), ("Strada", "La"), ("Ragazzo di Calabria", "Il"),
    ("Pequeña mentira", "La"), ("Fête de la musique", "La"), ("Cité des enfants perdus", "La"))
_SEQUELS = (" 2", " II", " III", ": Part II", " 3")


def _foreign(pick) -> str:
    """A foreign title in ML-1M's form: ``Misérables, Les`` or ``Mädchen in Uniform``."""
    words, article = _FOREIGN_TITLES[pick(len(_FOREIGN_TITLES))]
    return f"{words}, {article}" if article else words


def _english(pick, sequel: str = "") -> str:
    """A short English title, sometimes with its article moved to the end as ML-1M does.

    ``sequel`` (e.g. ``": Part II"``) goes before a moved article: ``Godfather: Part II, The``.
    """
    shape = pick(4)
    if shape == 0:
        core = f"{_ADJECTIVES[pick(len(_ADJECTIVES))]} {_NOUNS[pick(len(_NOUNS))]}"
    elif shape == 1:
        core = f"{_NOUNS[pick(len(_NOUNS))]} of the {_NOUNS[pick(len(_NOUNS))]}"
    elif shape == 2:
        core = f"{_NAMES[pick(len(_NAMES))]}'s {_NOUNS[pick(len(_NOUNS))]}"
    else:
        core = _NOUNS[pick(len(_NOUNS))]
    core += sequel
    if shape != 2 and pick(3) == 0:
        indefinite = "An" if core[0] in "AEIOU" else "A"
        core = f"{core}, {'The' if pick(3) else indefinite}"
    return core


def _title(pick, shape: int) -> str:
    """A title (without year) of one of ML-1M's shapes; shapes 1 and 2 are non-ASCII."""
    if shape == 0:
        return _english(pick)
    if shape == 1:
        return _foreign(pick)
    if shape == 2:  # an English title with its original one in inner parentheses
        return f"{_english(pick)} ({_foreign(pick)})"
    if shape == 3:
        return _english(pick, _SEQUELS[pick(len(_SEQUELS))])
    if shape == 4:
        return f"{_NOUNS[pick(len(_NOUNS))]}: {_english(pick)}"
    if shape == 5:
        return f"{_NAMES[pick(len(_NAMES))]} and {_NAMES[pick(len(_NAMES))]}"
    if shape == 6:  # a list with commas and an ampersand
        return (f"{_NOUNS[pick(len(_NOUNS))]}, {_NOUNS[pick(len(_NOUNS))]} & "
                f"{_NOUNS[pick(len(_NOUNS))]}")
    return f"{_ADJECTIVES[pick(len(_ADJECTIVES))]} {_english(pick)} (a.k.a. {_english(pick)})"


_TITLE_SHAPE_P = (0.55, 0.10, 0.06, 0.08, 0.07, 0.05, 0.05, 0.04)


def _draw_titles(rng: np.random.Generator, years: np.ndarray) -> list[str]:
    """``Title (Year)`` strings, unique, with every shape present once the catalogue allows.

    The first len(_TITLE_SHAPE_P) movies of a random order get one shape each, so even a tiny
    catalogue has accented, comma and inner-parenthesis titles to exercise parsers.
    """
    n_movies = len(years)
    shapes = rng.choice(len(_TITLE_SHAPE_P), n_movies, p=_TITLE_SHAPE_P)
    forced = rng.permutation(n_movies)[:len(_TITLE_SHAPE_P)]
    shapes[forced] = np.arange(len(forced))
    picks = iter(rng.integers(0, 1 << 30, 24 * n_movies + 64).tolist())

    def pick(n: int) -> int:
        return next(picks) % n

    titles, seen = [], set()
    for shape, year in zip(shapes.tolist(), years.tolist()):
        base = _title(pick, shape)
        title, k = f"{base} ({year})", 2
        while title in seen:
            title, k = f"{base} {k} ({year})", k + 1
        seen.add(title)
        titles.append(title)
    return titles


# ---------------------------------------------------------------------------------------------
# The latent model.


def _embeddings(rng: np.random.Generator, shares: dict, sizes: dict, rank: int) -> dict:
    """Random embedding tables, each scaled so its entries carry its share of the variance."""
    return {name: rng.normal(0.0, math.sqrt(shares[name]), (sizes[name], rank))
            for name in sizes}


def _standardized(values, weights) -> np.ndarray:
    """Values shifted and scaled to weighted mean 0 and weighted RMS 1."""
    values, weights = np.asarray(values, dtype=float), _normalized(weights)
    centred = values - weights @ values
    return centred / math.sqrt(weights @ centred ** 2)


def _plant_taste_axes(user_tables: dict, movie_tables: dict, rank: int) -> None:
    """Overwrite factor 0 (gender x genre) and factor 1 (age x genre) with the planted axes.

    Each planted column keeps its table's variance share, so the variance budget is unchanged.
    """
    axes = [("gender", [1.0 - MALE_FRACTION, MALE_FRACTION], (1.0, 0.0), _GENDER_TASTE_AXIS),
            ("age", _AGE_COUNTS, np.arange(len(AGE_CODES)), _AGE_TASTE_AXIS)]
    for k, (table, weights, positions, loadings) in enumerate(axes[:rank]):
        user_tables[table][:, k] = math.sqrt(_USER_FACTOR_SHARES[table]) * _standardized(
            positions, weights)
        movie_tables["genres"][:, k] = math.sqrt(_MOVIE_FACTOR_SHARES["genres"]) * (
            _standardized(loadings, _GENRE_COUNTS))


def _latent_structure(rng: np.random.Generator, config: GeneratorConfig, users: dict,
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
    genre_bias = _GENRE_BIAS_SHRINK * (np.asarray(_GENRE_MEAN_RATINGS) - GLOBAL_MEAN)
    age_of_movie = (LAST_YEAR - movies["year"]).astype(float)
    movie_bias = (genre_weights @ genre_bias + _YEAR_BIAS_PER_YEAR * age_of_movie
                  + rng.normal(0.0, MOVIE_BIAS_STD, n_movies))
    movie_bias -= (_YEAR_BIAS_PER_YEAR * age_of_movie).mean()

    u = _embeddings(rng, _USER_FACTOR_SHARES,
                    dict(gender=2, age=len(AGE_CODES), occupation=N_OCCUPATIONS,
                         individual=n_users), rank)
    m = _embeddings(rng, _MOVIE_FACTOR_SHARES,
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


# ---------------------------------------------------------------------------------------------
# Who rates what, and when.


def _user_activity(rng: np.random.Generator, config: GeneratorConfig) -> np.ndarray:
    """Ratings per user: >= MIN_RATINGS_PER_USER, log-normal tail, exactly n_ratings in all."""
    n_users, total = config.n_users, config.n_ratings
    low, cap = MIN_RATINGS_PER_USER, config.max_ratings_per_user
    weights = np.maximum(np.exp(rng.normal(0.0, _ACTIVITY_LOG_STD, n_users))
                         - _ACTIVITY_FLOOR_WEIGHT, 0.0)
    room = float(cap - low)

    def counts(scale: float) -> np.ndarray:
        """Soft cap: ~low + scale * weight for small values, saturating at cap."""
        if room == 0:
            return np.full(n_users, float(low))
        return low - room * np.expm1(-scale * weights / room)

    target = total
    lo, hi = 0.0, 1.0
    while counts(hi).sum() < target and hi < 1e12:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if counts(mid).sum() < target else (lo, mid)
    exact = counts(hi)
    result = np.floor(exact).astype(np.int64)
    result = np.clip(result, low, cap)
    # Hand out (or take back) the rounding remainder, largest fractional parts first.
    priority = np.argsort(-(exact - np.floor(exact)), kind="stable")
    while result.sum() != total:
        deficit = total - int(result.sum())
        movable = priority[result[priority] < cap] if deficit > 0 else \
            priority[::-1][result[priority[::-1]] > low]
        step = movable[:abs(deficit)]
        result[step] += 1 if deficit > 0 else -1
    return result


def _select_movies(rng: np.random.Generator, counts: np.ndarray,
                   popularity: np.ndarray) -> tuple:
    """Each user's distinct movies: popularity-weighted sampling without replacement.

    Exponential race: a user's movies are the ``count`` smallest of Exp(1) / popularity. Users
    are processed in chunks of similar activity so one partition serves the whole chunk.
    """
    n_movies = len(popularity)
    inverse = 1.0 / popularity
    by_activity = np.argsort(counts, kind="stable")
    users, movies = [], []
    chunk = 256
    for start in range(0, len(by_activity), chunk):
        block = by_activity[start:start + chunk]
        block_counts = counts[block]
        keep = int(block_counts.max())
        keys = rng.standard_exponential((len(block), n_movies)) * inverse
        if keep < n_movies:
            top = np.argpartition(keys, keep - 1, axis=1)[:, :keep]
        else:
            top = np.broadcast_to(np.arange(n_movies), (len(block), n_movies))
        top_keys = np.take_along_axis(keys, top, axis=1)
        ranked = np.take_along_axis(top, np.argsort(top_keys, axis=1), axis=1)
        taken = np.arange(keep)[None, :] < block_counts[:, None]
        users.append(np.repeat(block, block_counts))
        movies.append(ranked[taken])
    return np.concatenate(users), np.concatenate(movies)


def _timestamps(rng: np.random.Generator, counts: np.ndarray, style: LayoutStyle) -> np.ndarray:
    """Per-user clustered, increasing timestamps within the layout's window (users in id order)."""
    n_users = len(counts)
    first, last = style.first_timestamp, style.last_timestamp
    late = rng.random(n_users) < _LATE_STARTER_FRACTION
    early_start = first + rng.beta(1.5, 1.2, n_users) * (style.early_starters_until - first)
    late_start = rng.uniform(first, last - 86400, n_users)
    start = np.where(late, late_start, early_start)

    total = int(counts.sum())
    gaps = rng.exponential(_RATING_GAP_MEAN_S, total)
    breaks = rng.random(total) < _SESSION_BREAK_P
    gaps[breaks] = rng.exponential(_SESSION_BREAK_MEAN_S, int(breaks.sum()))
    first_rating = np.concatenate([[0], np.cumsum(counts)[:-1]])
    gaps[first_rating] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first_rating], counts)
    span = np.maximum(elapsed[np.cumsum(counts) - 1], 1.0)
    fit = np.minimum(1.0, (last - start) / span)
    stamps = np.repeat(start, counts) + elapsed * np.repeat(fit, counts)
    return np.clip(np.floor(stamps), first, last).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Ratings and the noise floor.


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x), vectorised (scipy's ndtr when available, else math.erf per element)."""
    try:
        from scipy.special import ndtr
    except ImportError:
        erf = np.frompyfunc(math.erf, 1, 1)
        return 0.5 * (1.0 + erf(np.asarray(x) / math.sqrt(2.0)).astype(float))
    return ndtr(x)


def _exceedances(mean: np.ndarray, thresholds: np.ndarray, scale) -> np.ndarray:
    """[N, K-1]: P(latent > t_k) for latent ~ N(mean, scale^2); scale a scalar or per rating."""
    return _normal_cdf((mean[:, None] - thresholds[None, :])
                       / np.reshape(scale, (-1, 1) if np.ndim(scale) else ()))


def _thresholds(mean: np.ndarray, noise: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """The cut points: quantiles of mean + independent noise at the cumulative rating mix."""
    cumulative = np.cumsum(fractions)[:-1]
    return np.quantile(mean + noise, cumulative)


def _noise_floor(ratings: np.ndarray, mean: np.ndarray, thresholds: np.ndarray,
                 noise: float, levels: np.ndarray) -> dict:
    """Error of the Bayes predictor E[r | mean] = r_1 + step * sum_k Phi((mean - t_k) / noise)."""
    low, step = float(levels[0]), float(levels[1] - levels[0])
    exceed = _exceedances(mean, thresholds, noise)  # P(N >= k), k = 1..K-1
    expected_n = exceed.sum(axis=1)
    # r = low + step * N; E[N^2] = sum_k (2k - 1) P(N >= k).
    second_n = exceed @ (2.0 * np.arange(1, len(thresholds) + 1) - 1.0)
    expected = low + step * expected_n
    variance = step ** 2 * (second_n - expected_n ** 2)
    residual = ratings - expected
    return dict(
        noise_floor_rmse=float(np.sqrt(np.mean(residual ** 2))),
        noise_floor_mae=float(np.mean(np.abs(residual))),
        noise_floor_rmse_expected=float(np.sqrt(np.mean(variance))),
        latent_mean_rmse=float(np.sqrt(np.mean(
            (ratings - np.clip(mean, levels[0], levels[-1])) ** 2))),
        global_mean_rmse=float(np.std(ratings)),
    )


# ---------------------------------------------------------------------------------------------
# Files.

_BLOCK_ROWS = 500_000


def _write_rows(path: Path, rows: Iterator[str], encoding: str) -> int:
    """Write text rows (newline-terminated) via a temporary file and rename; return the bytes."""
    tmp = path.with_name(path.name + ".tmp")
    size = 0
    with open(tmp, "wb") as f:
        for block in rows:
            data = block.encode(encoding)
            f.write(data)
            size += len(data)
    os.replace(tmp, path)
    return size


def _formatted(template: str, columns: Sequence[Sequence]) -> Iterator[str]:
    """Blocks of `template % row` lines from parallel columns (bounded memory)."""
    n = len(columns[0])
    for start in range(0, n, _BLOCK_ROWS):
        block = [column[start:start + _BLOCK_ROWS] for column in columns]
        block = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in block]
        flat = [v for row in zip(*block) for v in row]
        yield (template * (len(flat) // len(columns))) % tuple(flat)


def _csv_rows(header: str, columns: Sequence[Sequence]) -> Iterator[str]:
    """A header and CSV-quoted rows (titles with commas or quotes, as GroupLens writes them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    out.write(header + "\n")
    writer.writerows(zip(*columns))
    yield out.getvalue()


def _rating_text(ratings: np.ndarray, layout: str) -> list:
    """Ratings as each release writes them: `4` (ML-100K, ML-1M, ML-10M), `4.0` (CSV)."""
    values = np.unique(ratings)
    if layout == ml20m.LAYOUT.name:
        names = {v: f"{v:.1f}" for v in values.tolist()}
    else:
        names = {v: f"{v:g}" for v in values.tolist()}
    return [names[v] for v in ratings.tolist()]


def _utf8_titles(titles: list[str]) -> list[str]:
    """Every 50th title gets an original title in a script latin-1 cannot hold."""
    out = list(titles)
    for i in range(7, len(out), 50):
        head, year = out[i][:-7], out[i][-7:]  # "Title (YYYY)" -> "Title", " (YYYY)"
        out[i] = f"{head} ({_UTF8_ORIGINAL_TITLES[i % len(_UTF8_ORIGINAL_TITLES)]}){year}"
    return out


def _release_genres(genre_text: list[str]) -> list[str]:
    """ML-10M's and later vocabularies: `Children`, some `IMAX`, a few `(no genres listed)`."""
    out = []
    for i, text in enumerate(genre_text):
        text = text.replace("Children's", "Children")
        if i % 97 == 3:
            text += "|IMAX"
        if i % 211 == 5:
            text = "(no genres listed)"
        out.append(text)
    return out


_ML100K_OCCUPATIONS = (  # ML-1M occupation code -> the nearest ML-100K occupation name
    "other", "educator", "artist", "administrator", "student", "other", "healthcare",
    "executive", "other", "homemaker", "student", "lawyer", "programmer", "retired",
    "marketing", "scientist", "other", "engineer", "technician", "none", "writer")
_AGE_GROUP_YEARS = {1: (7, 17), 18: (18, 24), 25: (25, 34), 35: (35, 44), 45: (45, 49),
                    50: (50, 55), 56: (56, 73)}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _write_layout(out: Path, layout: str, rng: np.random.Generator, ratings: dict, users: dict,
                  movies: dict) -> dict:
    """Write the files of `layout`; return {file name: path} of what was written."""
    written = {}

    def write(name: str, rows: Iterator[str], encoding: str) -> None:
        path = out / name
        _write_rows(path, rows, encoding)
        written[name] = path

    rating_text = _rating_text(ratings["rating"], layout)
    ids = [ratings["user"], ratings["movie"], rating_text, ratings["timestamp"]]
    if layout == ml100k.LAYOUT.name:
        order = rng.permutation(len(rating_text))  # u.data is in no particular order
        write(ml100k.RATINGS_FILE, _formatted("%s\t%s\t%s\t%s\n",
                                              [np.asarray(c, dtype=object)[order] for c in ids]),
              ml100k.ENCODING)
        years = [rng.integers(lo, hi + 1) for lo, hi in
                 (_AGE_GROUP_YEARS[a] for a in users["age"].tolist())]
        write(ml100k.USERS_FILE, _formatted("%s|%s|%s|%s|%s\n", [
            users["id"], years, users["gender"],
            [_ML100K_OCCUPATIONS[o] for o in users["occupation"].tolist()], users["zip"]]),
              ml100k.ENCODING)
        flags = ["|".join("1" if g in row.split("|") else "0" for g in ml100k.GENRES)
                 for row in movies["genres"]]
        dates = [f"{1 + i % 28:02d}-{_MONTHS[i % 12]}-{year}"
                 for i, year in enumerate(movies["year"].tolist())]
        urls = [f"http://us.imdb.com/M/title-exact?{i}" for i in movies["id"].tolist()]
        write(ml100k.MOVIES_FILE, _formatted("%s|%s|%s||%s|%s\n", [
            movies["id"], movies["title"], dates, urls, flags]), ml100k.ENCODING)
    elif layout == ml1m.LAYOUT.name:
        write(ml1m.RATINGS_FILE, _formatted("%s::%s::%s::%s\n", ids), ml1m.ENCODING)
        write(ml1m.USERS_FILE, _formatted("%s::%s::%s::%s::%s\n", [
            users["id"], users["gender"], users["age"], users["occupation"], users["zip"]]),
              ml1m.ENCODING)
        write(ml1m.MOVIES_FILE, _formatted("%s::%s::%s\n", [
            movies["id"], movies["title"], movies["genres"]]), ml1m.ENCODING)
    elif layout == ml10m.LAYOUT.name:
        write(ml1m.RATINGS_FILE, _formatted("%s::%s::%s::%s\n", ids), ml10m.ENCODING)
        write(ml1m.MOVIES_FILE, _formatted("%s::%s::%s\n", [
            movies["id"], _utf8_titles(movies["title"]), _release_genres(movies["genres"])]),
              ml10m.ENCODING)
        sample = np.arange(0, len(rating_text), max(1, len(rating_text) // 100))
        write(ml10m.TAGS_FILE, _formatted("%s::%s::%s::%s\n", [
            ratings["user"][sample], ratings["movie"][sample],
            ["classic" if i % 2 else "seen it" for i in range(len(sample))],
            ratings["timestamp"][sample]]), ml10m.ENCODING)
    else:
        order = np.lexsort((ratings["movie"], ratings["user"]))  # sorted by user, then movie
        write(ml20m.RATINGS_FILE, _formatted(
            "%s,%s,%s,%s\n", [np.asarray(c, dtype=object)[order] for c in ids]), ml20m.ENCODING)
        write(ml20m.MOVIES_FILE, _csv_rows(ml20m.MOVIES_HEADER, [
            movies["id"].tolist(), _utf8_titles(movies["title"]),
            _release_genres(movies["genres"])]), ml20m.ENCODING)
        written[ml20m.RATINGS_FILE] = _prepend(out / ml20m.RATINGS_FILE, ml20m.RATINGS_HEADER)
    return written


def _prepend(path: Path, header: str) -> Path:
    """Put a header line before a written file's content (streaming copy)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(path, "rb") as source, open(tmp, "wb") as out:
        out.write(header.encode("ascii") + b"\n")
        shutil.copyfileobj(source, out, 4 << 20)
    os.replace(tmp, path)
    return path


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
        exceed = _exceedances(np.asarray(mean), self.thresholds, scale)
        return levels[0] + (levels[1] - levels[0]) * exceed.sum(axis=1)


def _streams(config: GeneratorConfig) -> dict:
    """The generator's independent random streams, by name, all from ``config.seed``."""
    return dict(zip(_STREAMS, (np.random.default_rng(s) for s in
                               np.random.SeedSequence(config.seed).spawn(len(_STREAMS)))))


def ground_truth(config: GeneratorConfig = GeneratorConfig()) -> GroundTruth:
    """Draw everything `generate` writes for ``config``, without writing it (deterministic)."""
    style = config.style
    rngs = _streams(config)
    users = _draw_users(rngs["users"], config.n_users)
    movies = _draw_movies(rngs["movies"], config.n_movies)
    titles = _draw_titles(rngs["titles"], movies["year"])
    user_bias, movie_bias, user_factors, movie_factors = _latent_structure(
        rngs["structure"], config, users, movies)

    counts = _user_activity(rngs["activity"], config)
    quality = (movie_bias - movie_bias.mean()) / max(float(movie_bias.std()), 1e-12)
    rho = _POPULARITY_QUALITY_CORRELATION
    pop_z = rho * quality + math.sqrt(1 - rho ** 2) * rngs["selection"].normal(
        size=config.n_movies)
    popularity = np.exp(np.where(
        pop_z > 0, -_POPULARITY_RIGHT_MAX * np.expm1(-pop_z / _POPULARITY_RIGHT_SCALE),
        _POPULARITY_LEFT_SLOPE * pop_z))
    user_index, movie_index = _select_movies(rngs["selection"], counts, popularity)

    # Order each user's ratings randomly, then stamp them with increasing times.
    order = np.lexsort((rngs["timestamps"].random(len(user_index)), user_index))
    user_index, movie_index = user_index[order], movie_index[order]
    counts_by_user = np.bincount(user_index, minlength=config.n_users)
    stamps = _timestamps(rngs["timestamps"], counts_by_user, style)

    mean = (GLOBAL_MEAN + user_bias[user_index] + movie_bias[movie_index]
            + np.einsum("ij,ij->i", user_factors[user_index], movie_factors[movie_index]))
    thresholds = _thresholds(mean, rngs["calibration"].normal(0.0, config.noise, len(mean)),
                             style.rating_fractions)
    latent = mean + rngs["noise"].normal(0.0, config.noise, len(mean))
    ratings = style.levels[np.searchsorted(thresholds, latent, side="left")]
    return GroundTruth(config, users, movies, titles, user_bias, movie_bias, user_factors,
                       movie_factors, user_index, movie_index, stamps, mean, thresholds, ratings)


def generate(out_dir: str | os.PathLike,
             config: GeneratorConfig = GeneratorConfig()) -> GenerationReport:
    """Generate the files of `config.layout` and ``generator.json`` into ``out_dir``.

    Files are written atomically and ``generator.json`` last, so an interrupted run is never
    mistaken for a finished one by `ensure_generated`.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_FILE).unlink(missing_ok=True)
    truth = ground_truth(config)
    users, movies, titles = truth.users, truth.movies, truth.titles
    user_index, movie_index, stamps = truth.user_index, truth.movie_index, truth.timestamps
    ratings, thresholds, levels = truth.ratings, truth.thresholds, config.style.levels
    counts_by_user = np.bincount(user_index, minlength=config.n_users)
    floor = _noise_floor(ratings, truth.mean, thresholds, config.noise, levels)

    movie_ids = movies["ids"]
    genre_names = np.asarray(GENRES, dtype=object)
    written = _write_layout(out, config.layout, _streams(config)["layout"], ratings=dict(
        user=user_index + 1, movie=movie_ids[movie_index], rating=ratings, timestamp=stamps),
        users=dict(id=np.arange(1, config.n_users + 1),
                   gender=np.where(users["is_male"], "M", "F").tolist(),
                   age=np.asarray(AGE_CODES)[users["age_index"]],
                   occupation=users["occupation"], zip=users["zip"]),
        movies=dict(id=movie_ids, title=titles,
                    genres=["|".join(genre_names[row]) for row in movies["genres"]],
                    year=movies["year"]))

    layout = LAYOUTS[config.layout]
    histogram = {float(level): int(n) for level, n in
                 zip(levels, np.bincount(np.searchsorted(levels, ratings),
                                         minlength=len(levels)))}
    report = GenerationReport(
        config=config,
        out_dir=str(out),
        ratings_path=str(written[layout.ratings_file]),
        users_path=str(written[layout.users_file]) if layout.users_file else None,
        movies_path=str(written[layout.movies_file]),
        n_ratings=int(len(ratings)),
        n_users=config.n_users,
        n_movies=config.n_movies,
        n_movies_rated=int(np.count_nonzero(np.bincount(movie_index,
                                                        minlength=config.n_movies))),
        rating_histogram=histogram,
        thresholds=tuple(float(t) for t in thresholds),
        min_user_ratings=int(counts_by_user.min()),
        max_user_ratings=int(counts_by_user.max()),
        first_timestamp=int(stamps.min()),
        last_timestamp=int(stamps.max()),
        file_sizes={name: path.stat().st_size for name, path in sorted(written.items())},
        **floor,
    )
    (out / REPORT_FILE).with_suffix(".tmp").write_text(
        json.dumps(report.to_json_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace((out / REPORT_FILE).with_suffix(".tmp"), out / REPORT_FILE)
    return report


def load_report(out_dir: str | os.PathLike) -> GenerationReport:
    """The report that `generate` wrote into ``out_dir`` (FileNotFoundError if none)."""
    path = Path(out_dir) / REPORT_FILE
    with open(path, encoding="utf-8") as f:
        return GenerationReport.from_json_dict(json.load(f), out_dir)


def ensure_generated(out_dir: str | os.PathLike,
                     config: GeneratorConfig = GeneratorConfig()) -> GenerationReport:
    """Reuse the data in ``out_dir`` if it was generated from ``config``, else generate it.

    Reuse needs ``generator.json`` with the same config and generator version, and every file
    it lists present with its recorded size.
    """
    try:
        report = load_report(out_dir)
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return generate(out_dir, config)
    folder = Path(report.out_dir)
    if report.config == config and report.generator_version == GENERATOR_VERSION and all(
            (folder / name).is_file() and (folder / name).stat().st_size == size
            for name, size in report.file_sizes.items()):
        return report
    return generate(out_dir, config)


def summary(report: GenerationReport) -> str:
    """One paragraph describing a generation, noise floor included."""
    fractions = ", ".join(f"{k:g}: {100 * v:.2f} %" for k, v in report.rating_fractions.items())
    c = report.config
    layout = LAYOUTS[c.layout]
    return (
        f"Wrote {report.n_ratings:,} ratings by {report.n_users:,} users of "
        f"{report.n_movies_rated:,}/{report.n_movies:,} movies in the {layout.name} layout "
        f"({', '.join(sorted(report.file_sizes))}; {layout.ratings_encoding}) to "
        f"{report.out_dir} (seed {c.seed}, rank {c.rank}, noise {c.noise}). Ratings per user "
        f"{report.min_user_ratings}..{report.max_user_ratings}; histogram {fractions}. Noise "
        f"floor (Bayes-optimal E[rating | user, movie]): RMSE {report.noise_floor_rmse:.4f} "
        f"(expected {report.noise_floor_rmse_expected:.4f}), MAE "
        f"{report.noise_floor_mae:.4f}; for reference the undiscretized latent mean has RMSE "
        f"{report.latent_mean_rmse:.4f} and the global mean {report.global_mean_rmse:.4f}.")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: generate a synthetic MovieLens-format data set and print a summary."""
    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(
        prog="kiko generate",
        description="Generate synthetic MovieLens data in the files of one release's layout "
                    "(ml-1m: ratings.dat, users.dat, movies.dat; ml-100k: u.data, u.user, "
                    "u.item; ml-10m: ratings.dat, movies.dat, tags.dat, half stars; ml-csv: "
                    "ratings.csv, movies.csv as ML-20M/25M/32M, half stars) plus "
                    "generator.json with the noise floor. Always regenerates.")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--layout", choices=sorted(LAYOUT_STYLES),
                        help=f"file layout (default {defaults.layout}, or the layout of --size)")
    parser.add_argument("--size", choices=sorted(RELEASE_SIZES),
                        help="the users, movies and ratings of a GroupLens release (the flags "
                             "below override single numbers)")
    parser.add_argument("--users", type=int,
                        help=f"number of users (default {defaults.n_users})")
    parser.add_argument("--movies", type=int,
                        help=f"number of movies in the movies file (default {defaults.n_movies})")
    parser.add_argument("--ratings", type=int,
                        help=f"number of ratings, at least {MIN_RATINGS_PER_USER} per user "
                             f"(default {defaults.n_ratings})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"random seed; same arguments give identical files "
                             f"(default {defaults.seed})")
    parser.add_argument("--rank", type=int, default=defaults.rank,
                        help=f"rank of the planted user-movie interaction (default "
                             f"{defaults.rank})")
    parser.add_argument("--noise", type=float, default=defaults.noise,
                        help=f"std of the Gaussian noise on the latent rating (default "
                             f"{defaults.noise})")
    args = parser.parse_args(argv)
    overrides = {key: value for key, value in (
        ("n_users", args.users), ("n_movies", args.movies), ("n_ratings", args.ratings),
        ("layout", args.layout)) if value is not None}
    overrides.update(rank=args.rank, noise=args.noise)
    try:
        config = (GeneratorConfig.release(args.size, seed=args.seed, **overrides) if args.size
                  else GeneratorConfig(seed=args.seed, **overrides))
    except ValueError as e:
        parser.error(str(e))
    started = time.perf_counter()
    report = generate(args.out, config)
    print(f"{summary(report)} Took {time.perf_counter() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
