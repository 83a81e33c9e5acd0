"""Unit tests of `nextquill.method.causal` and `nextquill.method.loss`: hand-computed values, invariants of the
maths, a slow token-by-token reference for every objective, and gradient accumulation. CPU, float32, seeded.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from nextquill.method.causal import (
    dce,
    end_positions,
    gold_logprobs,
    js_weights,
    mce,
    safe_div,
    stop_as_content,
    threshold_weights,
)
from nextquill.method.loss import OBJECTIVES
from nextquill.method.loss import objective_loss as _objective_loss

# The official code's α and L_p form; tests that vary them pass them explicitly.
objective_loss = functools.partial(_objective_loss, alpha=0.1, lp="official")
LP = {False: "official", True: "weighted"}  # the variants' weight_lp flag as the `lp` form

LN2, LN3 = math.log(2), math.log(3)
TWO_VIEW = ("mce_only", "dce_only", "mce_dce", "nextquill")
WEIGHTED = ("dce_only", "mce_dce", "nextquill")
# (objective, weight_lp): every distinct loss; weight_lp only changes nextquill.
VARIANTS = [(o, False) for o in OBJECTIVES] + [("nextquill", True)]


def close(actual, expected, tol=1e-6):
    torch.testing.assert_close(torch.as_tensor(actual, dtype=torch.float32),
                               torch.as_tensor(expected, dtype=torch.float32), rtol=0, atol=tol)


# --------------------------------------------------------------------------------------------------------------
# effects.py by hand
# --------------------------------------------------------------------------------------------------------------


def test_gold_logprobs_by_hand():
    """logits [0, ln 2, 0] -> softmax [1/4, 1/2, 1/4]: label 1 -> ln(1/2), label 0 -> ln(1/4), -100 -> 0."""
    logits = torch.tensor([[0.0, LN2, 0.0]] * 3)
    out = gold_logprobs(logits, torch.tensor([1, 0, -100]))
    close(out, [math.log(0.5), math.log(0.25), 0.0])


def test_gold_logprobs_upcasts_to_float32():
    logits = torch.tensor([[0.0, LN2, 0.0]], dtype=torch.bfloat16)
    out = gold_logprobs(logits, torch.tensor([1]))
    assert out.dtype == torch.float32
    close(out, [math.log(0.5)], tol=1e-2)  # bf16 rounds ln 2 itself


def test_mce_is_raw_logit_difference_in_float32():
    z_h, z_0 = torch.tensor([[1.0, 2.0]], dtype=torch.bfloat16), torch.tensor([[0.5, 4.0]], dtype=torch.bfloat16)
    out = mce(z_h, z_0)
    assert out.dtype == torch.float32
    close(out, [[0.5, -2.0]])


def test_dce_by_hand():
    """p_h = 1/2, p_0 = 1/4 -> 1/4; p_h = p_0 -> 0; p_h = 1/4, p_0 = 1/2 -> -1/4."""
    logp_h = torch.log(torch.tensor([0.5, 0.3, 0.25]))
    logp_0 = torch.log(torch.tensor([0.25, 0.3, 0.5]))
    close(dce(logp_h, logp_0), [0.25, 0.0, -0.25])


def test_threshold_weights_by_hand():
    """DCE > δ = 0.05 -> λ = 0.9; DCE = δ exactly or below -> ε = 0.1; masked -> 0 whatever the DCE."""
    effect = torch.tensor([0.25, 0.05, -0.3, 0.5])
    mask = torch.tensor([True, True, True, False])
    w = threshold_weights(effect, mask)
    assert w.dtype == torch.float32
    close(w, [0.9, 0.1, 0.1, 0.0])
    close(threshold_weights(effect, mask, delta=0.2, lam=2.0, eps=0.5), [2.0, 0.5, 0.5, 0.0])


def test_end_positions_mark_the_last_answer_token_of_each_row_in_flattened_order():
    """Row 0 answers at columns 1-3, row 1 at column 0 only, row 2 at 0-1 (then padding)."""
    labels = torch.tensor([[-100, 7, 8, 9], [5, -100, -100, -100], [3, 4, -100, -100]])
    assert end_positions(labels).tolist() == [False, False, True, True, False, True]


def test_stop_as_content_gives_the_end_token_eps_and_leaves_the_rest():
    weights = torch.tensor([0.9, 0.1, 0.9, 0.9])
    is_end = torch.tensor([False, False, True, False])
    close(stop_as_content(weights, is_end, eps=0.1), [0.9, 0.1, 0.1, 0.9])
    close(stop_as_content(weights, torch.zeros(4, dtype=torch.bool), eps=0.1), weights.tolist())


def test_js_weights_by_hand():
    """Row 0: p_h = [1/2, 1/2], p_0 = [1, 0] (a zero), m = [3/4, 1/4].
    KL(p_h‖m) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3); KL(p_0‖m) = ln(4/3) (the 0·ln 0 term is 0): 3/2 ln(4/3).
    Row 1: identical views -> exactly 0. Row 2: masked -> 0.
    """
    z_h = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.0, 0.0]])
    z_0 = torch.tensor([[0.0, -math.inf], [1.0, -2.0], [0.0, -math.inf]])
    w = js_weights(z_h, z_0, torch.tensor([True, True, False]))
    assert w.dtype == torch.float32
    close(w, [1.5 * math.log(4 / 3), 0.0, 0.0])
    assert w[1] == 0.0


def test_js_weights_v3_by_hand():
    """p_h = [1/4, 1/2, 1/4] (logits [0, ln 2, 0]), p_0 uniform, m = [7/24, 10/24, 7/24].
    KL(p_h‖m) = 1/2 ln(6/7) + 1/2 ln(6/5); KL(p_0‖m) = 2/3 ln(8/7) + 1/3 ln(4/5).
    """
    w = js_weights(torch.tensor([[0.0, LN2, 0.0]]), torch.zeros(1, 3), torch.tensor([True]))
    expected = 0.5 * math.log(6 / 7) + 0.5 * math.log(6 / 5) + 2 / 3 * math.log(8 / 7) + 1 / 3 * math.log(4 / 5)
    close(w, [expected])


def test_safe_div_zero_denominator_no_nan_value_or_gradient():
    num = torch.tensor(3.0, requires_grad=True)
    out = safe_div(num, torch.tensor(0.0))
    (grad,) = torch.autograd.grad(out, num)
    assert out.item() == 0.0 and grad.item() == 0.0
    close(safe_div(torch.tensor(3.0), 2), 1.5)


# --------------------------------------------------------------------------------------------------------------
# objective_loss by hand
# --------------------------------------------------------------------------------------------------------------


def hand_case():
    """V = 3, labels [1, 0, -100].
    Row 0: z_h = [0, ln 2, 0] -> p_h(1) = 1/2, CE_h = ln 2; z_0 = [ln 2, 0, 0] -> p_0(1) = 1/4, CE_0 = ln 4;
           DCE = 1/4 > δ -> ω = 0.9; z_h - z_0 = [-ln 2, ln 2, 0] -> exp [1/2, 2, 1], p(1) = 2/3.5, CE_p = ln(7/4).
    Row 1: z_h = z_0 = 0 -> every CE = ln 3, DCE = 0 -> ω = 0.1.
    Row 2: masked; garbage logits and weight must not matter.
    """
    z_h = torch.tensor([[0.0, LN2, 0.0], [0.0, 0.0, 0.0], [5.0, -7.0, 3.0]])
    z_0 = torch.tensor([[LN2, 0.0, 0.0], [0.0, 0.0, 0.0], [-4.0, 9.0, 1.0]])
    labels = torch.tensor([1, 0, -100])
    return z_h, z_0, labels


def test_hand_case_weights():
    z_h, z_0, labels = hand_case()
    w = threshold_weights(dce(gold_logprobs(z_h, labels), gold_logprobs(z_0, labels)), labels != -100)
    close(w, [0.9, 0.1, 0.0])


HAND_W = torch.tensor([0.9, 0.1, 123.0])  # the masked weight is garbage on purpose
HAND = {  # (objective, weight_lp) -> (L_n, L_p) from hand_case's docstring; total = L_n + 0.1 L_p
    ("sft", False): ((math.log(4) + LN3) / 2, 0.0),
    ("context_sft", False): ((LN2 + LN3) / 2, 0.0),
    ("mce_only", False): ((LN2 + LN3) / 2, (math.log(7 / 4) + LN3) / 2),
    ("dce_only", False): (0.9 * LN2 + 0.1 * LN3, 0.0),
    ("mce_dce", False): ((LN2 + LN3) / 2, 0.9 * math.log(7 / 4) + 0.1 * LN3),
    ("nextquill", False): (0.9 * LN2 + 0.1 * LN3, (math.log(7 / 4) + LN3) / 2),
    ("nextquill", True): (0.9 * LN2 + 0.1 * LN3, 0.9 * math.log(7 / 4) + 0.1 * LN3),
}


@pytest.mark.parametrize(("objective", "weight_lp"), VARIANTS)
def test_objective_loss_by_hand(objective, weight_lp):
    """Σω over unmasked tokens is 0.9 + 0.1 = 1, so weighted sums are already means; see hand_case."""
    z_h, z_0, labels = hand_case()
    loss, metrics = objective_loss(objective, labels, logits_h=z_h, logits_0=z_0, weights=HAND_W,
                                   lp=LP[weight_lp])
    ln, lp = HAND[(objective, weight_lp)]
    close(loss, ln + 0.1 * lp)
    close(metrics["loss/ln"], ln)
    close(metrics["loss/lp"], lp)
    close(metrics["weights/pref_fraction"], 0.5)  # one of the two unmasked tokens has λ


def test_alpha_scales_lp_only():
    z_h, z_0, labels = hand_case()
    loss, _ = objective_loss("mce_only", labels, logits_h=z_h, logits_0=z_0, alpha=2.0)
    close(loss, (LN2 + LN3) / 2 + 2.0 * (math.log(7 / 4) + LN3) / 2)


def test_metrics_are_detached_scalars():
    z_h, z_0, labels = hand_case()
    z_h.requires_grad_(True)
    _, metrics = objective_loss("nextquill", labels, logits_h=z_h, logits_0=z_0, weights=HAND_W)
    assert set(metrics) == {"loss/ln", "loss/lp", "weights/pref_fraction"}
    assert all(m.shape == () and not m.requires_grad for m in metrics.values())
    _, metrics = objective_loss("context_sft", labels, logits_h=z_h)
    assert metrics["weights/pref_fraction"] == 0.0 and metrics["loss/lp"] == 0.0


# --------------------------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------------------------


def identical_views(n=8, v=7):
    z = torch.randn(n, v)
    labels = torch.randint(0, v, (n,))
    labels[[1, 5]] = -100
    return z, z.clone(), labels


def test_identical_views_dce_only_equals_context_sft():
    """Identical views: DCE = 0 everywhere, so every weight is ε and Σ ε·CE / Σ ε is the plain token mean."""
    z_h, z_0, labels = identical_views()
    effect = dce(gold_logprobs(z_h, labels), gold_logprobs(z_0, labels))
    assert torch.all(effect == 0)
    w = threshold_weights(effect, labels != -100)
    assert torch.all(w[labels != -100] == 0.1) and torch.all(w[labels == -100] == 0)
    dce_only, _ = objective_loss("dce_only", labels, logits_h=z_h, logits_0=z_0, weights=w)
    context, _ = objective_loss("context_sft", labels, logits_h=z_h)
    close(dce_only, context)


@pytest.mark.parametrize("objective", ["mce_only", "mce_dce", "nextquill"])
def test_identical_views_lp_is_log_v(objective):
    """z_h - z_0 = 0 is uniform over V, so every L_p token CE is log V, and so is any (weighted) mean of them."""
    v = 7
    z_h, z_0, labels = identical_views(v=v)
    w = torch.rand(len(labels)) + 0.1
    loss, metrics = objective_loss(objective, labels, logits_h=z_h, logits_0=z_0, weights=w, alpha=0.1)
    close(metrics["loss/lp"], math.log(v))
    close(loss - metrics["loss/ln"], 0.1 * math.log(v))


def test_identical_views_js_weights_zero_and_loss_finite():
    """JS weights of identical views are all 0, so Σω = 0: weighted terms are 0 (not NaN); L_p stays log V."""
    z_h, z_0, labels = identical_views()
    z_h.requires_grad_(True)
    z_0.requires_grad_(True)
    w = js_weights(z_h.detach(), z_0.detach(), labels != -100)
    assert torch.all(w == 0)
    for weight_lp in (False, True):
        loss, metrics = objective_loss("nextquill", labels, logits_h=z_h, logits_0=z_0, weights=w, lp=LP[weight_lp])
        grads = torch.autograd.grad(loss, [z_h, z_0])
        assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)
        assert metrics["loss/ln"] == 0.0
        close(loss, 0.0 if weight_lp else 0.1 * math.log(7))


def test_zero_weight_denominator_gives_zero_term():
    z_h, z_0, labels = hand_case()
    loss, metrics = objective_loss("dce_only", labels, logits_h=z_h, weights=HAND_W, weight_denominator=0.0)
    assert loss.item() == 0.0 and metrics["loss/ln"].item() == 0.0


def test_all_tokens_masked_gives_zero_loss():
    z_h, z_0, _ = hand_case()
    labels = torch.full((3,), -100)
    for objective, weight_lp in VARIANTS:
        loss, _ = objective_loss(objective, labels, logits_h=z_h, logits_0=z_0, weights=HAND_W, lp=LP[weight_lp])
        assert loss.item() == 0.0


def random_case(n=12, v=11, seed=0):
    """Random logits of both views, random positive weights, and -100 at four positions."""
    g = torch.Generator().manual_seed(seed)
    z_h, z_0 = torch.randn(n, v, generator=g) * 2, torch.randn(n, v, generator=g) * 2
    labels = torch.randint(0, v, (n,), generator=g)
    labels[[0, 3, 4, 10]] = -100
    weights = torch.rand(n, generator=g) + 0.05
    return z_h, z_0, labels, weights


def loss_and_grads(objective, weight_lp, z_h, z_0, labels, weights, **kwargs):
    z_h, z_0 = z_h.clone().requires_grad_(True), z_0.clone().requires_grad_(True)
    loss, _ = objective_loss(objective, labels, logits_h=z_h, logits_0=z_0, weights=weights, lp=LP[weight_lp],
                             **kwargs)
    grads = torch.autograd.grad(loss, [z_h, z_0], allow_unused=True, materialize_grads=True)
    return loss.detach(), grads


@pytest.mark.parametrize(("objective", "weight_lp"), VARIANTS)
def test_masked_tokens_never_contribute(objective, weight_lp):
    """Changing the logits (even to ±1e4) and the weights of -100 positions changes neither loss nor gradients."""
    z_h, z_0, labels, weights = random_case()
    masked = labels == -100
    loss, grads = loss_and_grads(objective, weight_lp, z_h, z_0, labels, weights)
    z_h2, z_02, w2 = z_h.clone(), z_0.clone(), weights.clone()
    z_h2[masked], z_02[masked], w2[masked] = 1e4, -1e4 * torch.rand(int(masked.sum()), z_h.shape[1]), 50.0
    loss2, grads2 = loss_and_grads(objective, weight_lp, z_h2, z_02, labels, w2)
    assert loss2.item() == loss.item()
    for g, g2 in zip(grads, grads2, strict=True):
        assert torch.equal(g, g2)
        assert torch.all(g2[masked] == 0)


# --------------------------------------------------------------------------------------------------------------
# Against a slow, obvious reference
# --------------------------------------------------------------------------------------------------------------


def reference_loss(objective, labels, z_h, z_0, w, alpha=0.1, weight_lp=False):
    """Token by token, straight from docs/method.md (losses, ablations): no masking tricks, no vectorisation."""
    ce_h, ce_0, ce_p, omega = [], [], [], []
    for t in range(len(labels)):
        y = int(labels[t])
        if y == -100:
            continue
        ce_h.append(-torch.log(torch.softmax(z_h[t], dim=-1)[y]))
        ce_0.append(-torch.log(torch.softmax(z_0[t], dim=-1)[y]))
        ce_p.append(-torch.log(torch.softmax(z_h[t] - z_0[t], dim=-1)[y]))
        omega.append(w[t])
    n, total_w = len(ce_h), sum(omega)

    def mean(ces):
        return sum(ces) / n

    def weighted(ces):
        return sum(wt * c for wt, c in zip(omega, ces, strict=True)) / total_w

    if objective == "sft":
        return mean(ce_0)
    if objective == "context_sft":
        return mean(ce_h)
    if objective == "mce_only":
        return mean(ce_h) + alpha * mean(ce_p)
    if objective == "dce_only":
        return weighted(ce_h)
    if objective == "mce_dce":
        return mean(ce_h) + alpha * weighted(ce_p)
    assert objective == "nextquill"
    return weighted(ce_h) + alpha * (weighted(ce_p) if weight_lp else mean(ce_p))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("objective", "weight_lp"), VARIANTS)
def test_matches_slow_reference(objective, weight_lp, seed):
    z_h, z_0, labels, weights = random_case(seed=seed)
    loss, grads = loss_and_grads(objective, weight_lp, z_h, z_0, labels, weights, alpha=0.3)
    z_h_ref, z_0_ref = z_h.clone().requires_grad_(True), z_0.clone().requires_grad_(True)
    ref = reference_loss(objective, labels, z_h_ref, z_0_ref, weights, alpha=0.3, weight_lp=weight_lp)
    ref_grads = torch.autograd.grad(ref, [z_h_ref, z_0_ref], allow_unused=True, materialize_grads=True)
    close(loss, ref.detach(), tol=1e-5)
    for g, g_ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------------------------------
# Gradient accumulation
# --------------------------------------------------------------------------------------------------------------


def accumulated(objective, weight_lp, z_h, z_0, labels, weights, window_denominators):
    """Σ of the losses of 3 uneven micro-batches (and gradients w.r.t. the whole tensors)."""
    z_h, z_0 = z_h.clone().requires_grad_(True), z_0.clone().requires_grad_(True)
    keep = labels != -100
    dens = {"token_denominator": keep.sum(), "weight_denominator": (weights * keep).sum()}
    total = 0.0
    for part in (slice(0, 2), slice(2, 7), slice(7, None)):
        loss, _ = objective_loss(objective, labels[part], logits_h=z_h[part], logits_0=z_0[part],
                                 weights=weights[part], lp=LP[weight_lp], **(dens if window_denominators else {}))
        total = total + loss
    grads = torch.autograd.grad(total, [z_h, z_0], allow_unused=True, materialize_grads=True)
    return total.detach(), grads


@pytest.mark.parametrize(("objective", "weight_lp"), VARIANTS)
def test_gradient_accumulation_with_window_denominators(objective, weight_lp):
    z_h, z_0, labels, weights = random_case()
    whole, whole_grads = loss_and_grads(objective, weight_lp, z_h, z_0, labels, weights)
    summed, summed_grads = accumulated(objective, weight_lp, z_h, z_0, labels, weights, window_denominators=True)
    close(summed, whole, tol=1e-5)
    for g, g_whole in zip(summed_grads, whole_grads, strict=True):
        torch.testing.assert_close(g, g_whole, rtol=0, atol=1e-6)
    # Per-micro-batch denominators do not add up to the window's loss: the window totals matter.
    naive, _ = accumulated(objective, weight_lp, z_h, z_0, labels, weights, window_denominators=False)
    assert abs(naive.item() - whole.item()) > 1e-3


# --------------------------------------------------------------------------------------------------------------
# Which inputs each objective reads
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("objective", "unused"), [("sft", "h"), ("context_sft", "0"), ("dce_only", "0")])
def test_unused_view_gets_no_gradient(objective, unused):
    """sft reads only z_0; context_sft only z_h; dce_only reads z_0 through its (given) weights alone."""
    z_h, z_0, labels, weights = random_case()
    z_h.requires_grad_(True)
    z_0.requires_grad_(True)
    loss, _ = objective_loss(objective, labels, logits_h=z_h, logits_0=z_0, weights=weights)
    g_h, g_0 = torch.autograd.grad(loss, [z_h, z_0], allow_unused=True)
    assert (g_h if unused == "h" else g_0) is None
    assert (g_0 if unused == "h" else g_h) is not None
    other = {"logits_h": z_h + 5.0, "logits_0": z_0} if unused == "h" else {"logits_h": z_h, "logits_0": z_0 * 3}
    again, _ = objective_loss(objective, labels, weights=weights, **other)
    assert again.item() == loss.item()


def test_unused_view_may_be_omitted():
    z_h, z_0, labels, weights = random_case()
    objective_loss("sft", labels, logits_0=z_0)
    objective_loss("context_sft", labels, logits_h=z_h)
    objective_loss("dce_only", labels, logits_h=z_h, weights=weights)  # precomputed θ_D weights


@pytest.mark.parametrize("objective", WEIGHTED)
def test_missing_weights_raise_naming_objective(objective):
    z_h, z_0, labels, _ = random_case()
    with pytest.raises(ValueError, match=rf"{objective}.*weights"):
        objective_loss(objective, labels, logits_h=z_h, logits_0=z_0)


@pytest.mark.parametrize(("objective", "weight_lp"), VARIANTS)
def test_missing_logits_raise_naming_objective(objective, weight_lp):
    z_h, z_0, labels, weights = random_case()
    needed = ["logits_0"] if objective == "sft" else ["logits_h"]
    if objective in ("mce_only", "mce_dce", "nextquill"):
        needed.append("logits_0")
    for name in needed:
        given = {"logits_h": z_h, "logits_0": z_0}
        given[name] = None
        with pytest.raises(ValueError, match=rf"{objective}.*{name}"):
            objective_loss(objective, labels, weights=weights, lp=LP[weight_lp], **given)


def test_unknown_objective_raises():
    z_h, z_0, labels, _ = random_case()
    with pytest.raises(ValueError, match="unknown objective 'full'"):
        objective_loss("full", labels, logits_h=z_h, logits_0=z_0)


def test_empty_micro_batch_gives_zero_loss():
    labels, z = torch.zeros(0, dtype=torch.long), torch.zeros(0, 5)
    loss, metrics = objective_loss("nextquill", labels, logits_h=z, logits_0=z, weights=torch.zeros(0))
    assert loss.item() == 0.0 and metrics["weights/pref_fraction"].item() == 0.0


def test_effect_to_effect_by_hand():
    """e = p_h(y) - p_0(y): row 0, 1/2 - 1/2 = 0; row 1, 3/4 - 1/2 = 1/4. With d = (0.1, 0.05),
    L_p = ((0 - 0.1)² + (0.25 - 0.05)²) / 2 = 0.025; L_n (ω = 1) = (ln 2 + ln 4/3) / 2."""
    z_h = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    z_0 = torch.zeros(2, 2)
    labels, d = torch.tensor([0, 0]), torch.tensor([0.1, 0.05])
    loss, metrics = objective_loss("nextquill", labels, logits_h=z_h, logits_0=z_0, weights=torch.ones(2),
                                   data_effect=d, lp="effect_to_effect")
    ln = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    close(metrics["loss/lp"], 0.025)
    close(metrics["loss/ln"], ln)
    close(loss, ln + 0.1 * 0.025)


def reference_effect_to_effect(labels, z_h, z_0, w, d, alpha):
    """Token by token: Σ ω ℓ(z_h, y) / Σ ω + α · mean_t (softmax(z_h)[y] - softmax(z_0)[y] - d_t)²."""
    ce, sq, ws = [], [], []
    for t, y in enumerate(labels.tolist()):
        if y == -100:
            continue
        p_h, p_0 = torch.softmax(z_h[t], -1)[y], torch.softmax(z_0[t], -1)[y]
        ce.append(-torch.log_softmax(z_h[t], -1)[y] * w[t])
        ws.append(w[t])
        sq.append((p_h - p_0 - d[t]) ** 2)
    return sum(ce) / sum(ws) + alpha * sum(sq) / len(sq)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_effect_to_effect_matches_slow_reference(seed):
    z_h, z_0, labels, weights = random_case(seed=seed)
    d = torch.rand(labels.shape[0], generator=torch.Generator().manual_seed(seed + 10)) * 0.4 - 0.2
    grads = []
    losses = []
    for fn in ("ours", "reference"):
        zh, z0 = z_h.clone().requires_grad_(True), z_0.clone().requires_grad_(True)
        if fn == "ours":
            loss, _ = objective_loss("nextquill", labels, logits_h=zh, logits_0=z0, weights=weights, data_effect=d,
                                     alpha=0.3, lp="effect_to_effect")
        else:
            loss = reference_effect_to_effect(labels, zh, z0, weights, d, alpha=0.3)
        losses.append(loss.detach())
        grads.append(torch.autograd.grad(loss, [zh, z0]))
    close(losses[0], losses[1], tol=1e-5)
    for g, g_ref in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-5)
    assert grads[0][1].abs().sum() > 0  # the no-history view gets a gradient too: e_t depends on both


def test_effect_to_effect_needs_the_data_side_effect():
    z_h, z_0, labels, weights = random_case(seed=0)
    with pytest.raises(ValueError, match="needs data_effect"):
        objective_loss("nextquill", labels, logits_h=z_h, logits_0=z_0, weights=weights, lp="effect_to_effect")
