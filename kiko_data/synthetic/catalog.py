"""The movies: ids with ML-1M-like gaps, release years and genre sets."""

from __future__ import annotations

import numpy as np

from kiko.data.synthetic.marginals import (
    DECADE_COUNTS, FIRST_YEAR, GENRE_COUNTS, GENRES, LAST_YEAR, ML1M_MAX_MOVIE_ID, ML1M_N_MOVIES,
    RECENT_YEAR_COUNTS, normalized)

_GENRES_PER_MOVIE_P = (0.5, 0.35, 0.15)


def _year_probabilities() -> np.ndarray:
    """P(year) for FIRST_YEAR..LAST_YEAR, shaped like ML-1M's movie years."""
    years = np.arange(FIRST_YEAR, LAST_YEAR + 1)
    weights = np.zeros(len(years))
    for i, year in enumerate(years):
        if year in RECENT_YEAR_COUNTS:
            weights[i] = RECENT_YEAR_COUNTS[year]
        else:
            decade = year // 10 * 10
            in_decade = [y for y in years if y // 10 * 10 == decade and y not in
                         RECENT_YEAR_COUNTS]
            weights[i] = DECADE_COUNTS[decade] / len(in_decade)
    return normalized(weights)


def draw_movies(rng: np.random.Generator, n_movies: int) -> dict:
    """Movie ids (with ML-1M-like gaps), years and genre sets."""
    max_id = max(n_movies, round(n_movies * ML1M_MAX_MOVIE_ID / ML1M_N_MOVIES))
    ids = np.sort(rng.choice(np.arange(1, max_id + 1), n_movies, replace=False))
    year = FIRST_YEAR + rng.choice(LAST_YEAR - FIRST_YEAR + 1, n_movies, p=_year_probabilities())
    n_genres = 1 + rng.choice(len(_GENRES_PER_MOVIE_P), n_movies, p=_GENRES_PER_MOVIE_P)
    # Weighted sampling without replacement: the n_genres smallest of Exp(1) / weight.
    race = rng.standard_exponential((n_movies, len(GENRES)))
    race /= np.asarray(GENRE_COUNTS, dtype=float)
    order = np.argsort(race, axis=1)
    genres = np.zeros((n_movies, len(GENRES)), dtype=bool)
    chosen = np.arange(genres.shape[1])[None, :] < n_genres[:, None]
    genres[np.nonzero(chosen)[0], order[chosen]] = True
    return dict(ids=ids, year=year, genres=genres)
