"""What the generator imitates: the published marginals of ML-1M and the releases' sizes.

These are GroupLens' own numbers (counts from ML-1M's files and README, ML-25M's rating
histogram, each release's size); the generator draws from distributions shaped by them.
"""

from __future__ import annotations

import numpy as np

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
# ML-25M's rating histogram, 0.5 .. 5.0 in half stars (the half-star layouts').
HALF_STAR_RATING_FRACTIONS = (0.0157, 0.0311, 0.0160, 0.0656, 0.0505, 0.1959, 0.1271, 0.2656,
                              0.0880, 0.1445)

MIN_RATINGS_PER_USER = 20  # ML-1M's guarantee
MAX_RATINGS_PER_USER = 2314  # ML-1M's most active user

AGE_CODES = (1, 18, 25, 35, 45, 50, 56)
AGE_COUNTS = (222, 1103, 2096, 1193, 550, 496, 380)
N_OCCUPATIONS = 21
OCCUPATION_COUNTS = (711, 528, 267, 173, 759, 112, 236, 679, 17, 92, 195, 129, 388, 142, 302,
                     144, 241, 502, 70, 72, 281)
MALE_FRACTION = 4331 / 6040

# Genre frequencies of ML-1M's movies.dat, in GENRES order.
GENRE_COUNTS = (503, 283, 105, 251, 1200, 211, 127, 1603, 68, 44, 343, 114, 106, 471, 276, 492,
                143, 68)
# ML-1M's mean rating per genre, in GENRES order (shrunk into genre bias effects).
GENRE_MEAN_RATINGS = (3.49, 3.48, 3.68, 3.42, 3.52, 3.71, 3.93, 3.77, 3.45, 4.08, 3.22, 3.67,
                      3.67, 3.61, 3.47, 3.57, 3.89, 3.64)

FIRST_YEAR, LAST_YEAR = 1919, 2000
# ML-1M-like counts of movies: per year for the last decade, per decade before.
RECENT_YEAR_COUNTS = {2000: 156, 1999: 283, 1998: 337, 1997: 315, 1996: 345, 1995: 342,
                      1994: 257, 1993: 165, 1992: 102, 1991: 60}
DECADE_COUNTS = {1990: 77, 1980: 600, 1970: 250, 1960: 190, 1950: 160, 1940: 130, 1930: 100,
                 1920: 35, 1910: 3}

# Sizes of GroupLens' releases (users, movies in the movies file, ratings), for --size.
RELEASE_SIZES = {
    "ml-100k": (943, 1682, 100_000), "ml-1m": (6040, 3883, 1_000_209),
    "ml-10m": (69_878, 10_681, 10_000_054), "ml-20m": (138_493, 27_278, 20_000_263),
    "ml-25m": (162_541, 62_423, 25_000_095), "ml-32m": (200_948, 87_585, 32_000_204),
    "ml-latest-small": (610, 9742, 100_836),
}


def normalized(weights) -> np.ndarray:
    """Weights scaled to sum to 1 (a probability vector)."""
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()
