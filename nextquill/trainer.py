"""A thin transformers `Trainer` whose loss is NextQuill's objective (arXiv 2506.02368).

`compute_loss` runs the views an objective needs, projects only the answer positions through the LM
head (`answer_logits`), takes the token weights from the batch (precomputed DCE) or from the two
views themselves (online, as the official code does), and hands tensors to `loss.objective_loss`.
Normalisation spans the whole gradient-accumulation window and every device: `get_batch_samples`
counts the window's answer tokens (and, for precomputed weights, their sum) before the first micro-batch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
from transformers import Trainer

from nextquill.effects import dce, gold_logprobs, js_weights, threshold_weights
from nextquill.loss import objective_loss

WEIGHTED = ("dce_only", "mce_dce", "nextquill")


@dataclass(frozen=True)
class LossSettings:
    objective: str
    estimator: str = "online"  # "online": weights from this step's views; else from the batch's `weights`
    weighting: str = "threshold"
    alpha: float = 0.1
    weight_lp: bool = False
    delta: float = 0.05
    lam: float = 0.9
    eps: float = 0.1

    @property
    def views(self) -> tuple[str, ...]:
        if self.objective == "sft":
            return ("0",)
        if self.objective == "context_sft" or (self.objective == "dce_only" and self.estimator != "online"):
            return ("h",)
        return ("h", "0")

    @property
    def precomputed(self) -> bool:
        return self.objective in WEIGHTED and self.estimator != "online"


def answer_logits(model, batch: dict, view: str, keep: torch.Tensor) -> torch.Tensor:
    """(N, V) logits predicting the N answer tokens of `view` (N = keep.sum(), in `labels[keep]` order).

    The view runs right-padded and without an attention mask (see `nextquill.collator`). A pre-hook on the
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


def online_weights(s: LossSettings, logits_h: torch.Tensor, logits_0: torch.Tensor, labels: torch.Tensor,
                   effect: torch.Tensor | None = None):
    """(N,) unnormalised weights from this step's two views; no gradient flows through them.

    `effect` (N,), the DCE of these logits when the caller has it already, saves two log-softmaxes over V.
    """
    mask = labels != -100
    with torch.no_grad():
        if s.weighting == "js":
            return js_weights(logits_h, logits_0, mask)
        if effect is None:
            effect = dce(gold_logprobs(logits_h, labels), gold_logprobs(logits_0, labels))
        return threshold_weights(effect, mask, delta=s.delta, lam=s.lam, eps=s.eps)


class NextQuillTrainer(Trainer):
    """`Trainer` with NextQuill's loss; pass `settings=LossSettings(...)` and a `CausalPairCollator`."""

    loss_is_scaled_for_ga = True  # compute_loss already divides by the window's totals

    def __init__(self, *args, settings: LossSettings, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = settings
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batches = []
        for _ in range(num_batches):
            try:
                batches.append(next(epoch_iterator))
            except StopIteration:
                break
        if not batches:
            return batches, None
        # Our labels are already aligned with their logits: count them as they are (no causal shift).
        totals = torch.stack([sum(b["labels"].ne(-100).sum() for b in batches).float(),
                              sum(b["weights"].sum() for b in batches) if "weights" in batches[0]
                              else torch.tensor(0.0)]).to(device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            totals = self.accelerator.reduce(totals, reduction="sum")
        for b in batches:
            b["window_weight_sum"] = totals[1]
        return batches, totals[0]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        s = self.settings
        keep = inputs["labels"] != -100
        labels = inputs["labels"][keep]  # (N,)
        logits_h = answer_logits(model, inputs, "h", keep) if "h" in s.views else None
        logits_0 = None
        if "0" in s.views:
            # DCE-only uses the no-history view for its weights alone: no gradient needed there.
            with torch.set_grad_enabled(torch.is_grad_enabled() and s.objective != "dce_only"):
                logits_0 = answer_logits(model, inputs, "0", keep)
        weights, weight_den = None, None
        if s.precomputed:
            weights, weight_den = inputs["weights"][keep], inputs.get("window_weight_sum")
        elif s.objective in WEIGHTED:
            weights = online_weights(s, logits_h, logits_0, labels)
        token_den = num_items_in_batch if num_items_in_batch is not None else keep.sum()
        if weights is not None and weight_den is None:
            # Online weights exist only once each micro-batch has run, so the window's Σω is estimated
            # from this micro-batch's mean weight; exact when the windows' mean weights agree.
            weight_den = weights.sum() * token_den / keep.sum().clamp(min=1)
        loss, metrics = objective_loss(s.objective, labels, logits_h=logits_h, logits_0=logits_0, weights=weights,
                                       alpha=s.alpha, weight_lp=s.weight_lp, token_denominator=token_den,
                                       weight_denominator=weight_den)
        # Loss terms are normalised over the whole window, so one micro-batch holds 1/steps of its window's value.
        scale = self.current_gradient_accumulation_steps if model.training and num_items_in_batch is not None else 1
        for key, value in metrics.items():
            self._metrics[mode][key].append(float(value) * (scale if key.startswith("loss/") else 1))
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; the window total is global
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if "loss" in logs else "eval"
        for key, values in self._metrics[mode].items():
            if values:
                logs[key if mode == "train" else f"eval_{key}"] = sum(values) / len(values)
        self._metrics[mode].clear()
        super().log(logs, start_time)
