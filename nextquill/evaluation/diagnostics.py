"""How well a DCE estimator finds the preference-bearing tokens, scored against ground truth.

On the synthetic benchmark every target token carries a truth label (1 = produced by the user's
preferences, known only from the history). A good data-side effect ranks those tokens first: ROC-AUC
(the chance that a random preference-bearing token scores above a random other token, ties counting
half) and precision@k (the share of labelled tokens among the k highest-scoring) measure the ranking;
precision and recall of the `DCE > δ` rule measure the threshold the loss actually uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve by the Mann-Whitney rank statistic, with average ranks for ties.

    Args:
        scores (torch.Tensor): (N,) scores, higher = more likely positive.
        labels (torch.Tensor): (N,) 0/1 truth labels.

    Returns:
        float: AUC in [0, 1]; NaN when one class is absent.
    """
    scores, labels = scores.double().flatten(), labels.bool().flatten()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    uniq, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    # Tied scores share the mean of the ranks they span: rank of group g is (start + end + 1) / 2, 1-based.
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    pos_rank_sum = mean_rank[inverse][labels].sum()
    return float((pos_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_at_k(scores: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Share of positives among the `k` highest scores (ties broken by position, first wins).

    Args:
        scores (torch.Tensor): (N,) scores.
        labels (torch.Tensor): (N,) 0/1 truth labels.
        k (int): how many top tokens to inspect; clipped to N.
    """
    k = min(k, scores.numel())
    if k <= 0:
        return float("nan")
    top = torch.sort(scores.double().flatten(), descending=True, stable=True).indices[:k]
    return float(labels.flatten()[top].double().mean())


def threshold_quality(scores: torch.Tensor, labels: torch.Tensor, delta: float) -> dict[str, float]:
    """Precision and recall of the loss's rule `score > δ` against the labels."""
    predicted, truth = scores.flatten() > delta, labels.bool().flatten()
    hits = int((predicted & truth).sum())
    return {"precision_at_delta": hits / int(predicted.sum()) if predicted.any() else float("nan"),
            "recall_at_delta": hits / int(truth.sum()) if truth.any() else float("nan"),
            "predicted_fraction": float(predicted.double().mean()) if predicted.numel() else float("nan")}


def score_estimator(dce_rows: Sequence[Sequence[float]], label_rows: Sequence[Sequence[int]],
                    delta: float) -> dict[str, float]:
    """ROC-AUC, R-precision (precision@k with k = number of true tokens), precision@10% and the
    threshold rule's precision/recall, over all tokens of all examples."""
    pairs = [(d, y) for d, y in zip(dce_rows, label_rows, strict=True) if y is not None]
    if not pairs:
        return {}
    for d, y in pairs:
        if len(d) != len(y):
            raise ValueError(f"a row has {len(d)} DCE values but {len(y)} labels; both must follow target_ids")
    scores = torch.tensor([v for d, _ in pairs for v in d], dtype=torch.float64)
    labels = torch.tensor([v for _, y in pairs for v in y], dtype=torch.int64)
    positives = int(labels.sum())
    out = {"tokens": int(labels.numel()), "true_fraction": positives / max(1, labels.numel()),
           "roc_auc": roc_auc(scores, labels), "r_precision": precision_at_k(scores, labels, positives),
           "precision_at_10pct": precision_at_k(scores, labels, max(1, labels.numel() // 10)),
           **threshold_quality(scores, labels, delta)}
    # Undefined values (no positive, nothing above δ) become null: NaN is not JSON, and it never equals itself,
    # so a NaN would show as changed in every `dvc metrics diff`.
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in out.items()}
