"""What to generate: `GeneratorConfig` (sizes, signal, seed, layout) and each layout's style."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from kiko.data.movielens import RELEASE_LAYOUTS, ml100k, ml10m, ml1m, mlcsv
from kiko.data.synthetic.marginals import (
    HALF_STAR_RATING_FRACTIONS, MAX_RATINGS_PER_USER, MIN_RATINGS_PER_USER, ML1M_FIRST_TIMESTAMP,
    ML1M_LAST_TIMESTAMP, ML1M_N_MOVIES, ML1M_N_RATINGS, ML1M_N_USERS, ML1M_RATING_FRACTIONS,
    RELEASE_SIZES)

_YEAR_2001 = 978307200  # most ML-1M users start before it


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


# Per layout (kiko_data.movielens's names): ML-100K's and ML-1M's whole stars, ML-10M's and the
# CSV releases' half stars, each over its release's window.
LAYOUT_STYLES = {
    ml100k.LAYOUT.name: LayoutStyle(False, 874724710, 893286638, 893286638 - 86400),
    ml1m.LAYOUT.name: LayoutStyle(False, ML1M_FIRST_TIMESTAMP, ML1M_LAST_TIMESTAMP, _YEAR_2001),
    ml10m.LAYOUT.name: LayoutStyle(True, 789652009, 1231131736, 1231131736 - 86400),
    mlcsv.LAYOUT.name: LayoutStyle(True, 789652009, 1574327703, 1574327703 - 86400),
}


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate: sizes, the planted signal and the seed (same config, same bytes).

    Defaults are ML-1M's sizes. ``noise`` is the standard deviation of the Gaussian noise on the
    latent rating and ``interaction_std`` that of the planted rank-``rank`` term, both in rating
    units; together they set the noise floor.
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
        """A tiny data set for unit tests: a hundred users, a few thousand ratings."""
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

        Users scale with the number of ratings (so as many ratings per user as ML-1M) and
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
