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

from nextquill.method.causal import end_positions
from nextquill.method.loss import objective_loss
from nextquill.model.views import answer_logits, online_weights

WEIGHTED = ("dce_only", "mce_dce", "nextquill")


@dataclass(frozen=True)
class LossSettings:
    """What `compute_loss` needs of the params; built by `from_params`, so no value is written twice."""

    objective: str
    estimator: str  # "online": weights from this step's views; else from the batch's `weights`
    weighting: str
    alpha: float
    lp: str  # the form of nextquill's L_p: official | weighted | effect_to_effect
    delta: float
    lam: float
    eps: float
    end_token: str  # effect | content: how the end-of-text token is weighted

    @classmethod
    def from_params(cls, params, **overrides) -> LossSettings:
        """From `params.train` and `params.effects`; `overrides` replace fields (e.g. the objective)."""
        train, fx = params.train, params.effects
        values = {"objective": train.objective, "estimator": fx.estimator, "weighting": fx.weighting,
                  "alpha": train.alpha, "lp": train.lp, "delta": fx.delta, "lam": fx.lam, "eps": fx.eps,
                  "end_token": fx.end_token}
        return cls(**(values | overrides))

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

    @property
    def needs_data_effect(self) -> bool:
        """The effect-to-effect L_p regresses onto the estimator's DCE, read from the batch (`effects`)."""
        return self.objective == "nextquill" and self.lp == "effect_to_effect"


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
            weights = online_weights(s, logits_h, logits_0, labels, end_positions(inputs["labels"]))
        token_den = num_items_in_batch if num_items_in_batch is not None else keep.sum()
        if weights is not None and weight_den is None:
            # Online weights exist only once each micro-batch has run, so the window's Σω is estimated
            # from this micro-batch's mean weight; exact when the windows' mean weights agree.
            weight_den = weights.sum() * token_den / keep.sum().clamp(min=1)
        loss, metrics = objective_loss(s.objective, labels, logits_h=logits_h, logits_0=logits_0, weights=weights,
                                       data_effect=inputs["effects"][keep] if s.needs_data_effect else None,
                                       alpha=s.alpha, lp=s.lp, token_denominator=token_den,
                                       weight_denominator=weight_den)
        # Loss terms are normalised over the whole window, so one micro-batch holds 1/steps of its window's value.
        scale = self.current_gradient_accumulation_steps if model.training and num_items_in_batch is not None else 1
        for key, value in metrics.items():
            self._metrics[mode][key].append(float(value) * (scale if key.startswith("loss/") else 1))
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; the window total is global
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the loss terms: every process calls `log` at the same steps, so they are reduced across ranks.

        Each rank's loss term is its share of a window normalised over all ranks, so the ranks' shares add up
        to the term (sum); the other metrics (weight fractions) are averaged.
        """
        mode = "train" if "loss" in logs else "eval"
        for key, values in sorted(self._metrics[mode].items()):
            if values:
                value = sum(values) / len(values)
                if self.args.world_size > 1:
                    reduced = self.accelerator.reduce(torch.tensor(value, device=self.args.device),
                                                      reduction="sum" if key.startswith("loss/") else "mean")
                    value = float(reduced)
                logs[key if mode == "train" else f"eval_{key}"] = value
        self._metrics[mode].clear()
        super().log(logs, start_time)
