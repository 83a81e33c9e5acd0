"""Paired comparisons of two systems scored on the same targets: over targets and over training seeds.

Pure: arrays of scores in, numbers out. `paired_difference`: `a[i]` and `b[i]` are the two systems' scores of
target i (one seed, or the mean over seeds of each target), with a bootstrap CI and a sign-flip test.
`seed_difference`: one mean difference per training seed, with a Student-t CI. Differences are `a - b`.
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


def seed_difference(diffs: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean of per-seed differences and its Student-t interval: does the gap survive another training seed?

    The paired bootstrap above resamples targets with each target's score averaged over the seeds, so it says
    whether other users would agree, not whether another training run would. Here each seed is one
    observation: `diffs[s]` is method − baseline at training seed s (the same seed for both, so the same
    training sample and data order), averaged over the targets both scored. With S seeds the interval has
    S − 1 degrees of freedom: wide at three seeds, which is the honest width.

    Args:
        diffs: (S,) per-seed mean differences, S >= 2.
        level: confidence level of the interval.

    Returns:
        {"diff", "ci_low", "ci_high", "sd", "n_seeds"}; `sd` is the seed-to-seed sd of the difference. When
        every seed gives the same difference, sd is 0 and so is the interval's width.
    """
    from scipy.stats import t as student_t

    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"a seed interval needs the differences of at least 2 seeds, got {d.size}")
    if not np.isfinite(d).all():
        raise ValueError(f"seed differences must be finite, got {d.tolist()}")
    sd = float(d.std(ddof=1))
    half = float(student_t.ppf(0.5 + level / 2.0, d.size - 1)) * sd / np.sqrt(d.size)
    mean = float(d.mean())
    return {"diff": mean, "ci_low": mean - half, "ci_high": mean + half, "sd": sd, "n_seeds": int(d.size)}
