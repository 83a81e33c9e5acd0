"""Estimator diagnostics against hand computations and a slow pairwise reference."""

from __future__ import annotations

import math
import random

import pytest
import torch

from nextquill.evaluation.diagnostics import precision_at_k, roc_auc, score_estimator, threshold_quality


def pairwise_auc(scores: list[float], labels: list[int]) -> float:
    """The definition: P(score_pos > score_neg) + 0.5 P(tie), over every positive-negative pair."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_by_hand():
    # positives 0.9 and 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) = 3/4
    assert roc_auc(torch.tensor([0.9, 0.5, 0.4, 0.1]), torch.tensor([1, 0, 1, 0])) == pytest.approx(0.75)
    assert roc_auc(torch.tensor([1.0, 2.0]), torch.tensor([0, 1])) == 1.0
    assert roc_auc(torch.tensor([1.0, 1.0]), torch.tensor([0, 1])) == 0.5  # a tie counts half
    assert math.isnan(roc_auc(torch.tensor([1.0, 2.0]), torch.tensor([1, 1])))


def test_auc_matches_pairwise_reference_with_ties():
    rng = random.Random(3)
    for _ in range(20):
        n = rng.randint(2, 60)
        scores = [round(rng.uniform(-1, 1), 1) for _ in range(n)]  # rounding makes many ties
        labels = [rng.randint(0, 1) for _ in range(n)]
        if 0 < sum(labels) < n:
            assert roc_auc(torch.tensor(scores), torch.tensor(labels)) == pytest.approx(pairwise_auc(scores, labels))


def test_precision_at_k_and_threshold():
    scores, labels = torch.tensor([0.3, 0.9, 0.1, 0.6]), torch.tensor([0, 1, 0, 0])
    assert precision_at_k(scores, labels, 1) == 1.0
    assert precision_at_k(scores, labels, 2) == 0.5
    assert precision_at_k(scores, labels, 10) == 0.25  # k clipped to N
    q = threshold_quality(scores, labels, delta=0.5)  # predicted: 0.9, 0.6
    assert q == {"precision_at_delta": 0.5, "recall_at_delta": 1.0, "predicted_fraction": 0.5}


def test_score_estimator_pools_rows_and_checks_lengths():
    out = score_estimator([[0.9, 0.0], [0.2, 0.8]], [[1, 0], [0, 1]], delta=0.5)
    assert out["roc_auc"] == 1.0 and out["r_precision"] == 1.0 and out["tokens"] == 4
    assert score_estimator([[0.1]], [None], delta=0.5) == {}  # no truth: nothing to score
    with pytest.raises(ValueError, match="2 DCE values but 1 labels"):
        score_estimator([[0.1, 0.2]], [[1]], delta=0.5)


def test_undefined_scores_are_null_not_nan():
    out = score_estimator([[0.0, 0.01]], [[0, 0]], delta=0.5)  # no positive, nothing above δ
    assert out["roc_auc"] is None and out["precision_at_delta"] is None and out["recall_at_delta"] is None
