"""The users: demographics with ML-1M's marginals and zip codes."""

from __future__ import annotations

import numpy as np

from kiko.data.synthetic.marginals import (
    AGE_CODES, AGE_COUNTS, MALE_FRACTION, N_OCCUPATIONS, OCCUPATION_COUNTS, normalized)

_K12_STUDENT, _RETIRED, _OTHER_OCCUPATION = 10, 13, 0
_ZIP_SUFFIX_FRACTION = 0.012
_N_ZIP_PREFIXES = 600


def draw_users(rng: np.random.Generator, n_users: int) -> dict:
    """Demographics with ML-1M's marginals (and its age/occupation coupling) and zip codes."""
    is_male = rng.random(n_users) < MALE_FRACTION
    age_index = rng.choice(len(AGE_CODES), n_users, p=normalized(AGE_COUNTS))
    occupation = rng.choice(N_OCCUPATIONS, n_users, p=normalized(OCCUPATION_COUNTS))
    coupling = rng.random(n_users)
    occupation[(age_index == 0) & (coupling < 0.8)] = _K12_STUDENT
    occupation[(age_index >= 2) & (occupation == _K12_STUDENT)] = _OTHER_OCCUPATION
    occupation[(age_index == 6) & (coupling < 0.4)] = _RETIRED
    occupation[(age_index <= 3) & (occupation == _RETIRED)] = _OTHER_OCCUPATION

    prefixes = rng.permutation(1000)[:_N_ZIP_PREFIXES]
    prefix_p = normalized(1.0 / np.arange(1, _N_ZIP_PREFIXES + 1) ** 0.8)
    prefix = prefixes[rng.choice(_N_ZIP_PREFIXES, n_users, p=prefix_p)]
    rest = rng.integers(0, 100, n_users)
    has_suffix = rng.random(n_users) < _ZIP_SUFFIX_FRACTION
    suffix = rng.integers(0, 10_000, n_users)
    zips = [f"{a:03d}{b:02d}-{c:04d}" if s else f"{a:03d}{b:02d}"
            for a, b, s, c in zip(prefix.tolist(), rest.tolist(), has_suffix.tolist(),
                                  suffix.tolist())]
    return dict(is_male=is_male, age_index=age_index, occupation=occupation, zip=zips)
