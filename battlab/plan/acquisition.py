"""Acquisition functions: how much a candidate is worth measuring, from the model's mean and uncertainty.

All are written for maximization (a campaign that minimizes negates the results first):

=============== ==================================================================================
``"ei"``        expected improvement over the best result so far, ``E[max(f - best - xi, 0)]``
``"ucb"``       upper confidence bound, ``mean + kappa * std``
``"ts"``        Thompson sampling: the value of one draw from the model's posterior
``"explore"``   pure exploration (uncertainty sampling): ``std``
``"mean"``      pure exploitation: ``mean`` (a baseline, ignores uncertainty)
=============== ==================================================================================

Example
-------
>>> import numpy as np
>>> mean, std = np.array([1.0, 0.8, 0.0]), np.array([0.0, 0.5, 2.0])
>>> expected_improvement(mean, std, best=1.0).round(3).tolist()
[0.0, 0.115, 0.396]
>>> upper_confidence_bound(mean, std, kappa=1.0).tolist(), exploration(mean, std).tolist()
([1.0, 1.3, 2.0], [0.0, 0.5, 2.0])
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from battlab.errors import BattlabError

__all__ = ["ACQUISITIONS", "expected_improvement", "exploration", "exploitation", "upper_confidence_bound"]

#: Names accepted by :class:`battlab.plan.Campaign` (``acquisition=``).
ACQUISITIONS = ("ei", "ucb", "ts", "explore", "mean")


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """Expected improvement over ``best`` by at least ``xi`` (Jones et al. 1998); ``std = 0`` gives
    ``max(mean - best - xi, 0)``."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    gain = mean - best - xi
    safe = np.where(std > 0, std, 1.0)
    u = gain / safe
    ei = gain * norm.cdf(u) + safe * norm.pdf(u)
    return np.where(std > 0, np.maximum(ei, 0.0), np.maximum(gain, 0.0))


def upper_confidence_bound(mean: np.ndarray, std: np.ndarray, kappa: float = 2.0) -> np.ndarray:
    """``mean + kappa * std`` (Srinivas et al. 2010)."""
    if kappa < 0:
        raise BattlabError(f"kappa must be >= 0, got {kappa!r}.")
    return np.asarray(mean, dtype=float) + kappa * np.asarray(std, dtype=float)


def exploration(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Pure exploration: the model's uncertainty."""
    return np.asarray(std, dtype=float).copy()


def exploitation(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Pure exploitation: the model's mean."""
    return np.asarray(mean, dtype=float).copy()
