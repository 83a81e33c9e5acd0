"""Paired comparisons of two systems scored on the same targets: bootstrap CI and sign-flip test.

Pure: arrays of per-target scores in, numbers out. `a[i]` and `b[i]` are the two systems' scores of target
i (one seed, or the mean over seeds of each target). Differences are `a - b`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def paired_difference(a: Sequence[float], b: Sequence[float], resamples: int = 2000, seed: int = 0,
                      level: float = 0.95, permutations: int = 10_000) -> dict[str, float]:
    """Mean difference `a - b`, its percentile bootstrap CI (resampling targets) and a paired sign-flip p-value.

    Args:
        a, b: (n,) scores of the same n targets.
        resamples: bootstrap resamples of the n targets (with replacement).
        seed: seeds both the bootstrap and the sign flips, so the result is reproducible.
        level: confidence level of the interval.
        permutations: random sign flips of the differences (two-sided test of a zero mean difference); the
            p-value counts the observed assignment too, so it is never 0.

    Returns:
        {"diff", "ci_low", "ci_high", "p_value", "n"}.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"paired scores need two non-empty arrays of one length, got {x.shape} and {y.shape}")
    d = x - y
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    signs = rng.choice((-1.0, 1.0), size=(permutations, d.size))
    observed = abs(d.mean())
    extreme = int((np.abs((signs * d).mean(axis=1)) >= observed - 1e-15).sum())
    return {"diff": float(d.mean()), "ci_low": float(low), "ci_high": float(high),
            "p_value": (extreme + 1) / (permutations + 1), "n": int(d.size)}
