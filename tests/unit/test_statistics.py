"""Paired bootstrap CI and sign-flip test against slow, obvious computations and scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.stats

from nextquill.evaluation.statistics import paired_difference, seed_difference


def test_the_sign_flip_p_value_matches_the_exact_enumeration():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.30, 0.1, 12), rng.normal(0.27, 0.1, 12)
    d = a - b
    flips = [abs(np.mean(np.array(s) * d)) >= abs(d.mean()) - 1e-15 for s in itertools.product((-1, 1), repeat=12)]
    exact = sum(flips) / len(flips)  # every one of the 4,096 sign assignments, counted one by one
    ours = paired_difference(a, b, permutations=40_000, seed=1)
    assert ours["p_value"] == pytest.approx(exact, abs=0.01)
    assert ours["diff"] == pytest.approx(d.mean(), abs=1e-12) and ours["n"] == 12


def test_the_bootstrap_interval_matches_a_loop_and_scipy():
    rng = np.random.default_rng(5)
    a, b = rng.beta(3, 7, 60), rng.beta(3, 8, 60)
    ours = paired_difference(a, b, resamples=20_000, seed=2)
    d, loop = a - b, []
    draw = np.random.default_rng(9)
    for _ in range(20_000):  # resample targets with replacement, one resample at a time
        loop.append(np.mean([d[draw.integers(0, 60)] for _ in range(60)]))
    assert ours["ci_low"] == pytest.approx(np.quantile(loop, 0.025), abs=0.004)
    assert ours["ci_high"] == pytest.approx(np.quantile(loop, 0.975), abs=0.004)
    ref = scipy.stats.bootstrap((a, b), lambda x, y: np.mean(x - y), paired=True, vectorized=False,
                                method="percentile", n_resamples=5_000, random_state=0).confidence_interval
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx((ref.low, ref.high), abs=0.004)


def test_identical_systems_have_a_zero_difference_and_p_value_one():
    scores = [0.2, 0.4, 0.1, 0.3]
    result = paired_difference(scores, scores)
    assert (result["diff"], result["ci_low"], result["ci_high"], result["p_value"]) == (0.0, 0.0, 0.0, 1.0)


def test_a_clear_difference_is_significant_and_its_interval_excludes_zero():
    rng = np.random.default_rng(7)
    b = rng.uniform(0.1, 0.3, 80)
    result = paired_difference(b + 0.05 + rng.normal(0, 0.01, 80), b)
    assert result["ci_low"] > 0 and result["p_value"] < 0.001


def test_mismatched_arrays_are_refused():
    with pytest.raises(ValueError, match="one length"):
        paired_difference([0.1, 0.2], [0.1])


def test_the_seed_interval_is_the_student_t_interval_by_hand():
    diffs = [0.0192, 0.0153, -0.0028]
    mean = sum(diffs) / 3
    sd = (sum((d - mean) ** 2 for d in diffs) / 2) ** 0.5  # sample sd, by hand
    half = 4.302652729911275 * sd / 3 ** 0.5  # t quantile 0.975 at 2 degrees of freedom, from a table
    got = seed_difference(diffs)
    assert got["diff"] == pytest.approx(mean, abs=1e-12) and got["sd"] == pytest.approx(sd, abs=1e-12)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((mean - half, mean + half), abs=1e-9)
    assert got["ci_low"] < 0 < got["ci_high"] and got["n_seeds"] == 3


def test_the_seed_interval_covers_the_true_gap_at_its_level():
    # Seeds whose mean difference is truly 0.01 with seed noise 0.01: about 95% of 3-seed intervals cover it.
    rng = np.random.default_rng(11)
    covered = [(r := seed_difference(rng.normal(0.01, 0.01, 3)))["ci_low"] <= 0.01 <= r["ci_high"]
               for _ in range(4000)]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.015)


def test_one_seed_has_no_seed_interval():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_difference([0.02])


def test_a_non_finite_seed_difference_is_refused():
    with pytest.raises(ValueError, match="finite"):
        seed_difference([0.01, float("nan"), 0.02])
