"""From latent rating to stars, and the best any model can do on them (the noise floor).

Rating = lowest level + step * #{k : t_k < latent}. The thresholds t_k are the quantiles of
``mean + eps'`` over the sampled pairs, with ``eps'`` an independent copy of the noise, at the
layout's cumulative rating fractions: fixed constants independent of the ratings' noise, so the
histogram matches the release's up to sampling error.

With ``mean = latent - eps``, ``P(rating > level k | mean) = Phi((mean - t_k) / noise)``, so the
Bayes-optimal (MSE) predictor is ``E[rating | mean] = low + step * sum_k Phi((mean - t_k) /
noise)``; its error over the generated ratings is the noise floor.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x), vectorised (scipy's ndtr when available, else math.erf per element)."""
    try:
        from scipy.special import ndtr
    except ImportError:
        erf = np.frompyfunc(math.erf, 1, 1)
        return 0.5 * (1.0 + erf(np.asarray(x) / math.sqrt(2.0)).astype(float))
    return ndtr(x)


def exceedances(mean: np.ndarray, thresholds: np.ndarray, scale) -> np.ndarray:
    """[N, K-1]: P(latent > t_k) for latent ~ N(mean, scale^2); scale a scalar or per rating."""
    return _normal_cdf((mean[:, None] - thresholds[None, :])
                       / np.reshape(scale, (-1, 1) if np.ndim(scale) else ()))


def calibrated_thresholds(mean: np.ndarray, noise: np.ndarray,
                          fractions: Sequence[float]) -> np.ndarray:
    """The cut points: quantiles of mean + independent noise at the cumulative rating mix."""
    cumulative = np.cumsum(fractions)[:-1]
    return np.quantile(mean + noise, cumulative)


def noise_floor(ratings: np.ndarray, mean: np.ndarray, thresholds: np.ndarray,
                noise: float, levels: np.ndarray) -> dict:
    """Error of the Bayes predictor E[r | mean] = r_1 + step * sum_k Phi((mean - t_k) / noise)."""
    low, step = float(levels[0]), float(levels[1] - levels[0])
    exceed = exceedances(mean, thresholds, noise)  # P(N >= k), k = 1..K-1
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
