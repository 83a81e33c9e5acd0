"""Causal preference effects and token weights of NextQuill (https://arxiv.org/abs/2506.02368), as pure tensors.

Every input is answer-aligned: the (N, V) logits of the N answer positions of a micro-batch, flattened, so the
with-history view (h) and the without-history view (0) line up by index. Nothing here sees a model, a batch dict,
a config object or a file; `loss.py` and the trainer compose these functions. Log-softmaxes run in float32 on the
given rows only. Weights are unnormalised (normalising by Σω is the loss's job, across a whole accumulation
window) and carry no meaning for gradients: callers compute them under `no_grad`, as the official code does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def gold_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Log-probability of each gold token, log softmax(z_t)[y_t], in float32.

    See https://arxiv.org/abs/2506.02368 (p_D(y_t | x, h, y_<t) of the data-side effect).

    Args:
        logits (torch.Tensor): (N, V) logits of the answer positions, any float dtype.
        labels (torch.Tensor): (N,) gold token ids; -100 marks a position to ignore.

    Returns:
        torch.Tensor: (N,) float32 log-probabilities, 0 at positions labelled -100 (no gradient reaches them).
    """
    keep = labels != IGNORE_INDEX
    safe = torch.where(keep, labels, 0)  # -100 is not a valid index for gather
    logp = torch.log_softmax(logits.float(), dim=-1)  # (N, V); upcast the given rows only
    picked = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (N,)
    return torch.where(keep, picked, 0.0)


def mce(logits_h: torch.Tensor, logits_0: torch.Tensor) -> torch.Tensor:
    """Model-side causal preference effect, the raw logit difference z_h - z_0 (official code).

    See https://arxiv.org/abs/2506.02368, MCE_t = f(x, h, y_<t) - f(x, ∅, y_<t). Computed in float32: two close
    bfloat16 logits would lose most of their difference to rounding.

    Args:
        logits_h (torch.Tensor): (N, V) logits with the history.
        logits_0 (torch.Tensor): (N, V) logits without the history, aligned with `logits_h`.

    Returns:
        torch.Tensor: (N, V) float32 difference; gradients flow into both views.
    """
    return logits_h.float() - logits_0.float()


def dce(logp_h: torch.Tensor, logp_0: torch.Tensor) -> torch.Tensor:
    """Data-side causal preference effect of each gold token, p(y_t | x, h, y_<t) - p(y_t | x, ∅, y_<t).

    See https://arxiv.org/abs/2506.02368 (DCE, estimated by θ_D or, as in the official code, by θ itself).

    Args:
        logp_h (torch.Tensor): (N,) gold-token log-probabilities with the history (`gold_logprobs`).
        logp_0 (torch.Tensor): (N,) the same without the history.

    Returns:
        torch.Tensor: (N,) probability differences in [-1, 1].
    """
    return logp_h.exp() - logp_0.exp()


def threshold_weights(
    dce: torch.Tensor, mask: torch.Tensor, delta: float = 0.05, lam: float = 0.9, eps: float = 0.1
) -> torch.Tensor:
    """Hard token weights: λ for preference-driven tokens (DCE > δ), ε for the rest, 0 where masked.

    See https://arxiv.org/abs/2506.02368; official-code values δ = 0.05, λ = 0.9, ε = 0.1.

    Args:
        dce (torch.Tensor): (N,) data-side effects (`dce`).
        mask (torch.Tensor): (N,) bool, True at real answer tokens (label != -100).
        delta (float): threshold δ on the probability difference. Default 0.05.
        lam (float): weight λ of preference-driven tokens. Default 0.9.
        eps (float): weight ε of the other tokens. Default 0.1.

    Returns:
        torch.Tensor: (N,) float32 unnormalised weights.
    """
    weights = torch.where(dce > delta, lam, eps).to(torch.float32)  # NaN effects compare False: ε
    return weights.masked_fill(~mask, 0.0)


def end_positions(labels: torch.Tensor) -> torch.Tensor:
    """Where each row's answer ends: the last position with a label != -100, in `labels[labels != -100]` order.

    Every target ends with the end-of-text token, so these are the positions that learn when to stop.

    Args:
        labels (torch.Tensor): (B, K) answer labels of a batch, -100 at prompt and padding positions.

    Returns:
        torch.Tensor: (N,) bool over the N = (labels != -100).sum() answer tokens, True at each row's last one.
    """
    keep = labels != IGNORE_INDEX  # (B, K)
    after = torch.cat([keep[:, 1:], torch.zeros_like(keep[:, :1])], dim=1)  # (B, K): the next position is kept
    return (keep & ~after)[keep]


def stop_as_content(weights: torch.Tensor, is_end: torch.Tensor, eps: float) -> torch.Tensor:
    """The end-of-text token weighted ε whatever its effect (`effects.end_token: content`).

    The end-of-text token follows the user's sign-off, which the history predicts, so its DCE often exceeds δ
    and threshold weighting gives it λ. A few steps of such weights teach the model to stop after a habit
    marker before it has learnt the item content that carries ε: short outputs (docs/results.md, §3).

    Args:
        weights (torch.Tensor): (N,) unnormalised token weights (`threshold_weights` or `js_weights`).
        is_end (torch.Tensor): (N,) bool, True at the end-of-text positions (`end_positions`).
        eps (float): weight ε of the tokens that are not preference-bearing.

    Returns:
        torch.Tensor: (N,) float32 weights, ε at the end-of-text positions and unchanged elsewhere.
    """
    return torch.where(is_end, torch.full_like(weights, eps), weights)


def js_weights(logits_h: torch.Tensor, logits_0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Soft token weights: KL(p_h ‖ m) + KL(p_0 ‖ m) with m = (p_h + p_0) / 2, summed over the vocabulary.

    The official code's unused `weight_strategy='JS'` (https://arxiv.org/abs/2506.02368 names only the hard
    weights). Written in log space so that identical views give exactly 0 and zero probabilities give no NaN:
    with d = log p_h - log p_0, log p_h - log m = ln 2 - softplus(-d) and log p_0 - log m = ln 2 - softplus(d).
    The zero-probability guards make the forward safe only; compute these weights under `no_grad`. This project
    detaches them (`nextquill.model.views.online_weights`), a departure: in the official code gradients flow
    through the JS weights into both views.

    Args:
        logits_h (torch.Tensor): (N, V) logits with the history.
        logits_0 (torch.Tensor): (N, V) logits without the history.
        mask (torch.Tensor): (N,) bool, True at real answer tokens (label != -100).

    Returns:
        torch.Tensor: (N,) float32 unnormalised weights in [0, 2 ln 2], 0 where masked.
    """
    logp_h = torch.log_softmax(logits_h.float(), dim=-1)  # (N, V)
    logp_0 = torch.log_softmax(logits_0.float(), dim=-1)  # (N, V)
    p_h, p_0 = logp_h.exp(), logp_0.exp()
    d = logp_h - logp_0  # (N, V); ±inf where one side is exactly 0, NaN where both are
    # 0 · log(0 / m) = 0 by convention; the guard keeps 0 · inf from turning into NaN.
    kl_h = torch.where(p_h > 0, p_h * (math.log(2) - F.softplus(-d)), 0.0).sum(-1)
    kl_0 = torch.where(p_0 > 0, p_0 * (math.log(2) - F.softplus(d)), 0.0).sum(-1)
    return (kl_h + kl_0).clamp(min=0.0).masked_fill(~mask, 0.0)  # clamp: rounding can dip below 0


def safe_div(num: torch.Tensor, den: torch.Tensor | float) -> torch.Tensor:
    """num / den, and 0 where den == 0: no NaN, no inf, and no NaN gradient either.

    Used for every Σω normaliser, which is 0 when all weights are (e.g. JS weights of identical views).

    Args:
        num (torch.Tensor): numerator, any shape.
        den (torch.Tensor | float): denominator, broadcastable to `num`.

    Returns:
        torch.Tensor: the quotient, 0 wherever `den` is 0.
    """
    den = torch.as_tensor(den, dtype=num.dtype, device=num.device)
    zero = den == 0
    # Divide by 1 where den is 0, so that neither the value nor its gradient sees 0/0 before the select.
    return torch.where(zero, torch.zeros_like(num), num / torch.where(zero, torch.ones_like(den), den))
