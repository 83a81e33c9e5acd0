"""NextQuill's training objective and its ablations (https://arxiv.org/abs/2506.02368) as one pure function.

`objective_loss` takes answer-aligned logits of the two views, the labels and (for the weighted objectives) the
unnormalised token weights, and returns L_n + α·L_p with detached metrics. It leaves out where the weights come
from (`effects.py`: online from the same passes, or precomputed by a frozen θ_D) and how the logits were made.
Denominators default to the micro-batch's own; pass the accumulation window's token count and Σω so that the
micro-batch losses of a window sum to the window's loss.
"""

from __future__ import annotations

import torch

from nextquill.method.causal import IGNORE_INDEX, gold_logprobs, mce, safe_div

# objective -> (view whose CE is L_n, L_n ω-weighted, L_p: None = absent, else ω-weighted); docs/method.md, ablations.
# The form of nextquill's L_p is `lp`: "official" (unweighted, the official code), "weighted" (ω-weighted, the
# paper's summary) or "effect_to_effect" (the model's effect regressed onto the data-side effect, Algorithm 1).
TERMS: dict[str, tuple[str, bool, bool | None]] = {
    "sft": ("0", False, None),
    "context_sft": ("h", False, None),
    "mce_only": ("h", False, False),
    "dce_only": ("h", True, None),
    "mce_dce": ("h", False, True),
    "nextquill": ("h", True, False),
}
OBJECTIVES = tuple(TERMS)
LP_FORMS = ("official", "weighted", "effect_to_effect")


def _required(objective: str, lp: str) -> tuple[str, bool, bool | None, set[str]]:
    """The objective's terms and the inputs they read; dce_only reads only logits_h (its weights are given)."""
    if objective not in TERMS:
        raise ValueError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    if lp not in LP_FORMS:
        raise ValueError(f"unknown L_p form {lp!r}; expected one of {', '.join(LP_FORMS)}")
    view, ln_weighted, lp_weighted = TERMS[objective]
    if objective == "nextquill":
        lp_weighted = lp == "weighted"
    needs = {f"logits_{view}"}
    if lp_weighted is not None:
        needs |= {"logits_h", "logits_0"}
    if ln_weighted or lp_weighted:
        needs.add("weights")
    if objective == "nextquill" and lp == "effect_to_effect":
        needs.add("data_effect")
    return view, ln_weighted, lp_weighted, needs


def _check(objective: str, needs: set[str], given: dict[str, torch.Tensor | None]) -> None:
    missing = sorted(name for name in needs if given[name] is None)
    if missing:
        raise ValueError(f"objective {objective!r} needs {', '.join(missing)}")


def _term(ce: torch.Tensor, coef: torch.Tensor, denominator: torch.Tensor | float) -> torch.Tensor:
    """Σ_t coef_t · CE_t / denominator, 0 for a zero denominator. ce, coef: (N,) float32."""
    return safe_div((coef * ce).sum(), denominator)


def objective_loss(
    objective: str,
    labels: torch.Tensor,
    *,
    logits_h: torch.Tensor | None = None,
    logits_0: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    data_effect: torch.Tensor | None = None,
    alpha: float,
    lp: str,
    token_denominator: torch.Tensor | float | None = None,
    weight_denominator: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_n + α·L_p for one ablation variant of the paper (arXiv 2506.02368; docs/method.md, ablations).

    With ℓ the token cross-entropy and the sums over tokens with label != -100:
    unweighted terms are Σ ℓ / token_denominator, weighted terms Σ ω·ℓ / weight_denominator.
    L_n = ℓ(z_0, y) for sft, else ℓ(z_h, y), weighted for dce_only and nextquill. L_p = ℓ(z_h - z_0, y)
    (the MCE through softmax-CE), unweighted for mce_only, weighted for mce_dce; for nextquill by `lp`:
    "official" unweighted, "weighted" ω-weighted, or "effect_to_effect"
    L_p = Σ_t (e_t - d_t)² / token_denominator with e_t = softmax(z_h)[y_t] - softmax(z_0)[y_t], the model's
    effect on the gold token (gradients flow into both views), and d_t = `data_effect`, the estimator's DCE
    (constant). sft, context_sft and dce_only have no L_p.

    Args:
        objective (str): one of "sft", "context_sft", "mce_only", "dce_only", "mce_dce", "nextquill".
        labels (torch.Tensor): (N,) gold token ids; -100 marks a position that contributes nothing.
        logits_h (torch.Tensor | None): (N, V) logits with the history; all objectives but sft.
        logits_0 (torch.Tensor | None): (N, V) logits without the history, aligned with `logits_h`; sft and the
            objectives with an L_p.
        weights (torch.Tensor | None): (N,) unnormalised token weights ω (`effects.threshold_weights`,
            `effects.js_weights` or a frozen θ_D's); needed by dce_only, mce_dce and nextquill; the other
            objectives use them only for the metric. Treated as constants (detached) and zeroed at -100 positions.
        data_effect (torch.Tensor | None): (N,) the data-side effect d_t of each gold token (a frozen θ_D's or
            the base model's DCE), detached; needed by nextquill with lp "effect_to_effect".
        alpha (float): weight α of L_p (`train.alpha`).
        lp (str): the form of nextquill's L_p (`train.lp`): "official", "weighted" or "effect_to_effect".
        token_denominator (torch.Tensor | float | None): divisor of unweighted terms; default this micro-batch's
            number of unmasked tokens. Pass the accumulation window's count for exact gradient accumulation.
        weight_denominator (torch.Tensor | float | None): divisor of weighted terms; default this micro-batch's
            Σω over unmasked tokens. Pass the window's Σω. A zero denominator makes its term 0.

    Returns:
        tuple[torch.Tensor, dict[str, torch.Tensor]]: the scalar loss, and detached scalar metrics "loss/ln"
        (the L_n term used), "loss/lp" (L_p before α; 0 when the objective has none) and
        "weights/pref_fraction" (see `pref_fraction`; 0 when no weights are given).

    Raises:
        ValueError: for an unknown objective, or when logits or weights the objective needs are None.
    """
    view, ln_weighted, lp_weighted, needs = _required(objective, lp)
    _check(objective, needs, {"logits_h": logits_h, "logits_0": logits_0, "weights": weights,
                              "data_effect": data_effect})
    mask = labels != IGNORE_INDEX  # (N,); the one place where -100 is interpreted
    ones = mask.float()
    omega = weights.detach().float() * ones if weights is not None else None
    tok_den = ones.sum() if token_denominator is None else token_denominator
    w_den = omega.sum() if omega is not None and weight_denominator is None else weight_denominator

    def term(ce: torch.Tensor, weighted: bool) -> torch.Tensor:
        return _term(ce, omega, w_den) if weighted else _term(ce, ones, tok_den)

    # -gold_logprobs is the float32 token CE; it is already 0 at -100, and the coefficients zero it again.
    ln = term(-gold_logprobs(logits_h if view == "h" else logits_0, labels), ln_weighted)
    lp_term = torch.zeros_like(ln)
    if objective == "nextquill" and lp == "effect_to_effect":
        effect = gold_logprobs(logits_h, labels).exp() - gold_logprobs(logits_0, labels).exp()  # (N,) e_t
        lp_term = _term((effect - data_effect.detach().float()) ** 2, ones, tok_den)
    elif lp_weighted is not None:
        lp_term = term(-gold_logprobs(mce(logits_h, logits_0), labels), lp_weighted)
    no_weights = torch.zeros((), device=labels.device)
    metrics = {"loss/ln": ln.detach(), "loss/lp": lp_term.detach(),
               "weights/pref_fraction": no_weights if omega is None else pref_fraction(omega, mask)}
    return ln + alpha * lp_term, metrics


def pref_fraction(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fraction of unmasked tokens weighted above the smallest positive weight among them.

    For threshold weights this is the share of preference-driven (λ) tokens, and 0 when every token got ε.
    The denominator counts unmasked tokens only (the official print also counted padding).

    Args:
        weights (torch.Tensor): (N,) token weights.
        mask (torch.Tensor): (N,) bool, True at real answer tokens.

    Returns:
        torch.Tensor: detached float32 scalar in [0, 1); 0 when no unmasked token has a positive weight.
    """
    w = torch.where(mask, weights.detach().float(), 0.0)  # (N,)
    if w.numel() == 0:
        return torch.zeros((), device=weights.device)
    smallest = torch.where(w > 0, w, torch.inf).min()  # inf when no token is positive: the fraction is then 0
    return safe_div((w > smallest).float().sum(), mask.sum())  # no host sync, unlike boolean indexing
