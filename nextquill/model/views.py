"""The twin views of one batch: answer-position logits of each view, and the token weights they give.

Shared by the Trainer (`nextquill.model.trainer`, online weights every step) and effect estimation
(`nextquill.model.estimate`, under no_grad), so both compute the same logits and the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nextquill.method.causal import dce, gold_logprobs, js_weights, stop_as_content, threshold_weights


@dataclass(frozen=True)
class WeightSettings:
    """How DCE becomes token weights; built from `params.effects` by `from_effects`."""

    weighting: str
    delta: float
    lam: float
    eps: float
    end_token: str  # effect | content

    @classmethod
    def from_effects(cls, fx) -> WeightSettings:
        return cls(weighting=fx.weighting, delta=fx.delta, lam=fx.lam, eps=fx.eps, end_token=fx.end_token)


def answer_logits(model, batch: dict, view: str, keep: torch.Tensor) -> torch.Tensor:
    """(N, V) logits predicting the N answer tokens of `view` (N = keep.sum(), in `labels[keep]` order).

    The view runs right-padded and without an attention mask (see `nextquill.model.collator`). A pre-hook on the
    LM head keeps the hidden states of the answer positions alone, so only N rows are projected onto the
    vocabulary, and whatever the model does after its head (a logit scale, soft-capping) still applies.
    """
    positions = batch[f"answer_positions_{view}"]  # (B, K)
    rows = torch.arange(positions.shape[0], device=positions.device).unsqueeze(1).expand_as(positions)[keep]
    cols = positions[keep]  # (N,)
    handle = _unwrap(model).get_output_embeddings().register_forward_pre_hook(
        lambda module, args: (args[0][rows, cols], *args[1:]))  # (B, T, d) -> (N, d)
    try:
        logits = model(input_ids=batch[f"input_ids_{view}"], use_cache=False).logits
    finally:
        handle.remove()
    if logits.shape[0] != cols.shape[0]:
        raise RuntimeError(f"{type(_unwrap(model)).__name__} does not project through get_output_embeddings(); "
                           f"got logits of shape {tuple(logits.shape)} for {cols.shape[0]} answer tokens")
    return logits


def _unwrap(model):
    """The model under DDP / DeepSpeed wrappers (they keep it in `.module`); PEFT models pass attributes on."""
    while hasattr(model, "module"):
        model = model.module
    return model


def online_weights(s, logits_h: torch.Tensor, logits_0: torch.Tensor, labels: torch.Tensor,
                   is_end: torch.Tensor, effect: torch.Tensor | None = None):
    """(N,) unnormalised weights from this step's two views; no gradient flows through them.

    `s` carries the weighting (`WeightSettings`, or a `LossSettings`, which has the same fields). `is_end` (N,)
    marks the end-of-text positions (`causal.end_positions`), weighted ε when `s.end_token` is "content".
    `effect` (N,), the DCE of these logits when the caller has it already, saves two log-softmaxes over V.
    """
    mask = labels != -100
    with torch.no_grad():
        if s.weighting == "js":
            weights = js_weights(logits_h, logits_0, mask)
        else:
            if effect is None:
                effect = dce(gold_logprobs(logits_h, labels), gold_logprobs(logits_0, labels))
            weights = threshold_weights(effect, mask, delta=s.delta, lam=s.lam, eps=s.eps)
        return stop_as_content(weights, is_end, s.eps) if s.end_token == "content" else weights
