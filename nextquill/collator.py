"""Batch the two views of each example so that their answers line up by index.

Each view (with history `h`, without history `0`) is `prompt_ids + target_ids`, left-padded to the
longest sequence *of that view in this batch* (dynamic padding: the no-history view stays short).
Because both views end with the same target tokens, the logits that predict the answers sit in the
last K+1 positions of both, where K is the longest target in the batch: one `labels` tensor (B, K)
serves both views, and the model only ever projects those positions through its LM head
(`logits_to_keep=K+1`). Left padding shifts positions, so `position_ids` restart at 0 per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nextquill.effects import IGNORE_INDEX  # the one label value every loss term skips

VIEWS = {"h": "prompt_ids_with", "0": "prompt_ids_without"}


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask), both (B, T) with T the longest row."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
    return ids, mask


def _right_align(rows: Sequence[Sequence], width: int, fill, dtype) -> torch.Tensor:
    out = torch.full((len(rows), width), fill, dtype=dtype)
    for i, row in enumerate(rows):
        if len(row):
            out[i, width - len(row):] = torch.as_tensor(row, dtype=dtype)
    return out


class CausalPairCollator:
    """Rows of the prepared dataset -> model inputs for the views an objective needs.

    Args:
        pad_id (int): pad token id (any id works: padded positions are masked out).
        views (tuple[str, ...]): "h" and/or "0".
        weight_key (str | None): a per-target-token column (e.g. precomputed DCE weights), right-aligned
            like the labels into `weights` (B, K); absent when None.

    Returns a dict with `labels` (B, K), and per view v: `input_ids_v`, `attention_mask_v`,
    `position_ids_v` (B, T_v). `labels[b, j]` is predicted by `logits_v[b, T_v - K - 1 + j]`.

    >>> rows = [{"prompt_ids_with": [5, 6, 7], "prompt_ids_without": [5], "target_ids": [8, 2]},
    ...         {"prompt_ids_with": [5, 6], "prompt_ids_without": [5], "target_ids": [2]}]
    >>> batch = CausalPairCollator(pad_id=0)(rows)
    >>> batch["input_ids_h"].tolist()
    [[5, 6, 7, 8, 2], [0, 0, 5, 6, 2]]
    >>> batch["input_ids_0"].tolist(), batch["position_ids_0"].tolist()
    ([[5, 8, 2], [0, 5, 2]], [[0, 1, 2], [0, 0, 1]])
    >>> batch["labels"].tolist()
    [[8, 2], [-100, 2]]
    """

    def __init__(self, pad_id: int, views: tuple[str, ...] = ("h", "0"), weight_key: str | None = None):
        unknown = set(views) - set(VIEWS)
        if unknown or not views:
            raise ValueError(f"views must be a non-empty subset of {sorted(VIEWS)}, got {views}")
        self.pad_id, self.views, self.weight_key = pad_id, views, weight_key

    def __call__(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        targets = [r["target_ids"] for r in rows]
        width = max(len(t) for t in targets)
        batch = {"labels": _right_align(targets, width, IGNORE_INDEX, torch.long)}
        for view in self.views:
            ids, mask = _left_pad([list(r[VIEWS[view]]) + list(t) for r, t in zip(rows, targets, strict=True)],
                                  self.pad_id)
            batch[f"input_ids_{view}"] = ids
            batch[f"attention_mask_{view}"] = mask
            batch[f"position_ids_{view}"] = (mask.cumsum(-1) - 1).clamp(min=0)
        if self.weight_key is not None:
            batch["weights"] = _right_align([r[self.weight_key] for r in rows], width, 0.0, torch.float32)
        return batch
