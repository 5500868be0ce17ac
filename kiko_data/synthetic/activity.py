"""Who rates what, and when: activity per user, popularity, selection, timestamps.

Every user rates at least MIN_RATINGS_PER_USER movies; activity above that is log-normal,
soft-capped at the most ratings one user can give, and scaled to exactly ``n_ratings``. Each
user picks distinct movies by popularity-weighted sampling without replacement. Selection does
not depend on the user's own taste or noise, so the pairs are missing at random given
popularity. Timestamps come in sessions inside the layout's window.
"""

from __future__ import annotations

import math

import numpy as np

from kiko.data.synthetic.config import GeneratorConfig, LayoutStyle
from kiko.data.synthetic.marginals import MIN_RATINGS_PER_USER

_ACTIVITY_LOG_STD = 1.2
_ACTIVITY_FLOOR_WEIGHT = 0.08  # users below it give exactly MIN_RATINGS_PER_USER
# log popularity = f(z), z ~ N(0, 1): slope _POPULARITY_LEFT_SLOPE below 0 (a long tail of
# obscure movies, some never rated), saturating at _POPULARITY_RIGHT_MAX above (no movie is
# seen by everybody, as in ML-1M).
_POPULARITY_LEFT_SLOPE = 2.9
_POPULARITY_RIGHT_MAX = 6.5
_POPULARITY_RIGHT_SCALE = 3.5
_POPULARITY_QUALITY_CORRELATION = 0.35

# Most users start early in the layout's window; ratings follow in sessions, seconds apart.
_LATE_STARTER_FRACTION = 0.1
_RATING_GAP_MEAN_S = 30.0
_SESSION_BREAK_P = 0.01
_SESSION_BREAK_MEAN_S = 5 * 86400.0


def user_activity(rng: np.random.Generator, config: GeneratorConfig) -> np.ndarray:
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


def movie_popularity(rng: np.random.Generator, movie_bias: np.ndarray) -> np.ndarray:
    """Each movie's sampling weight: long-tailed, saturating, mildly correlated with quality."""
    quality = (movie_bias - movie_bias.mean()) / max(float(movie_bias.std()), 1e-12)
    rho = _POPULARITY_QUALITY_CORRELATION
    pop_z = rho * quality + math.sqrt(1 - rho ** 2) * rng.normal(size=len(movie_bias))
    return np.exp(np.where(
        pop_z > 0, -_POPULARITY_RIGHT_MAX * np.expm1(-pop_z / _POPULARITY_RIGHT_SCALE),
        _POPULARITY_LEFT_SLOPE * pop_z))


def select_movies(rng: np.random.Generator, counts: np.ndarray,
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


def timestamps(rng: np.random.Generator, counts: np.ndarray, style: LayoutStyle) -> np.ndarray:
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
