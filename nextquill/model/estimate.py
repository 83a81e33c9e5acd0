"""Per-token DCE and weights of whole examples under no_grad, batched by length (little padding).

Shared by the `effects` stage (the training set, once, for precomputed weights) and `evaluate` (the
evaluated model's effects on the held-out targets, for the diagnostics and the token-effect report).
"""

from __future__ import annotations

from collections.abc import Iterator


def length_sorted_batches(rows: list[dict], batch_size: int) -> Iterator[list[int]]:
    """Indices of `rows` in batches of similar total length, longest first (peak memory shows at once)."""
    order = sorted(range(len(rows)), key=lambda i: -(len(rows[i]["prompt_ids_with"]) + len(rows[i]["target_ids"])))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def estimate(model, rows: list[dict], batch_size: int, settings, pad_id: int,
             desc: str = "effects") -> Iterator[tuple[int, list, list]]:
    """(row index, DCE per target token, weight per target token) for every row, under no_grad.

    `settings` is a `nextquill.model.views.WeightSettings`; progress is reported as `desc` (examples, ETA).
    """
    import torch

    from nextquill.method.causal import dce, end_positions, gold_logprobs
    from nextquill.model.collator import CausalPairCollator
    from nextquill.model.views import answer_logits, online_weights
    from nextquill.progress import Progress

    collate = CausalPairCollator(pad_id, ("h", "0"))
    model.eval()
    progress = Progress(len(rows), desc, "examples")
    for chunk in length_sorted_batches(rows, batch_size):
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in collate([rows[i] for i in chunk]).items()}
        keep = batch["labels"] != -100
        labels = batch["labels"][keep]
        with torch.no_grad():
            logits_h = answer_logits(model, batch, "h", keep)
            logits_0 = answer_logits(model, batch, "0", keep)
            effect = dce(gold_logprobs(logits_h, labels), gold_logprobs(logits_0, labels))
            weights = online_weights(settings, logits_h, logits_0, labels, end_positions(batch["labels"]), effect)
        counts = keep.sum(dim=1).tolist()
        for i, d, w in zip(chunk, effect.split(counts), weights.split(counts), strict=True):
            yield i, d.tolist(), w.tolist()
        progress.update(len(chunk))
    progress.close()
