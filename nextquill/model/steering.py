"""Context Steering (CoS; He et al., 2024): decode from logits that amplify the effect of the user's history.

Each example is run in two contexts that share every generated token: the prompt with the history block (h)
and the same prompt without it (0). At each step the next-token logits are combined as
`logits_h + lam * (logits_h - logits_0)`; lam = 0 is plain decoding with the h prompt, lam > 0 pushes the
continuation further towards what the history changes. The loop mirrors `nextquill.evaluation.metrics.generate`
(HF `generate`): length-sorted batches, left padding, attention masks, KV caches, repetition penalty over the
h-context ids, greedy or temperature/top-k/top-p sampling, pad after eos, `skip_special_tokens` decoding.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from nextquill.model.generation import Decoding


def steer_logits(logits_h: torch.Tensor, logits_0: torch.Tensor, lam: float) -> torch.Tensor:
    """`logits_h + lam * (logits_h - logits_0)` in float32, without NaN.

    Args:
        logits_h, logits_0: (..., V) logits with and without the history, any float dtype.
    Returns:
        (..., V) float32. Where either view is non-finite the difference counts as 0, so a token masked to -inf
        in both views stays -inf (inf - inf would be NaN) and lam * 0 never makes NaN; finite results are clamped
        to the float32 range, since the difference of two large bf16 logits can overflow.
    """
    import torch

    h, z = logits_h.float(), logits_0.float()  # upcast first: bf16/fp16 differences lose most of their bits
    diff = torch.where(torch.isfinite(h) & torch.isfinite(z), h - z, torch.zeros_like(h))
    out = h + lam * diff  # exactly h when lam == 0 (x + 0.0 == x), so lam = 0 reproduces plain decoding bit for bit
    limit = torch.finfo(torch.float32).max
    return torch.where(torch.isfinite(h), out.clamp(-limit, limit), h)


def _repetition_penalty(scores: torch.Tensor, ids: torch.Tensor, penalty: float,
                        ignore: torch.Tensor) -> torch.Tensor:
    """HF `RepetitionPenaltyLogitsProcessor` with a per-row `prompt_ignore_length`.

    scores (B, V) float32; ids (B, T) every id seen so far; ignore (B,) how many leading ids of each row are not
    counted (its left pads at scope `all`, as `generate` does, or its whole padded prompt at scope `generated`).
    """
    import torch

    if penalty == 1.0:
        return scores
    vocab = scores.shape[1]
    positions = torch.arange(ids.shape[1], device=ids.device)
    # ids not counted point at an extra column that is dropped afterwards (HF does the same)
    ids = ids.masked_fill(positions[None, :] < ignore[:, None], vocab)
    wide = torch.cat([scores, scores.new_zeros((scores.shape[0], 1))], dim=1)  # (B, V + 1)
    seen = torch.gather(wide, 1, ids)
    return wide.scatter(1, ids, torch.where(seen < 0, seen * penalty, seen / penalty))[:, :vocab]


def _sample(scores: torch.Tensor, decoding: Decoding, top_k: int | None) -> torch.Tensor:
    """HF warpers in HF's order (temperature, top-k, top-p), then one multinomial draw: (B, V) -> (B,)."""
    import torch

    scores = scores / decoding.temperature
    if top_k:
        kth = torch.topk(scores, min(top_k, scores.shape[-1]))[0][..., -1, None]
        scores = scores.masked_fill(scores < kth, -float("inf"))
    if decoding.top_p < 1.0:
        sorted_scores, sorted_idx = torch.sort(scores, descending=False)
        remove = sorted_scores.softmax(dim=-1).cumsum(dim=-1) <= (1 - decoding.top_p)
        remove[..., -1:] = False  # keep at least the most likely token
        scores = scores.masked_fill(remove.scatter(1, sorted_idx, remove), -float("inf"))
    return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)


class _Context:
    """One view (h or 0) of a batch: its own left-padded prompt, mask, positions and KV cache."""

    def __init__(self, model, prompts: Sequence[Sequence[int]], pad: int, device):
        import torch

        width = max(len(p) for p in prompts)
        self.ids = torch.full((len(prompts), width), pad, dtype=torch.long, device=device)  # (B, T)
        mask = torch.zeros_like(self.ids)
        for row, p in enumerate(prompts):
            self.ids[row, width - len(p):] = torch.tensor(list(p), dtype=torch.long, device=device)
            mask[row, width - len(p):] = 1
        # HF generate feeds no mask when nothing is padded (and so takes SDPA's causal fast path); do the same so
        # lam = 0 matches it exactly. Positions come from the mask either way: cumsum - 1, left pads at 0.
        self.mask = None if bool((mask == 1).all()) else mask
        self.positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
        self.model, self.cache = model, None
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        params = inspect.signature(base.forward).parameters
        # transformers 5.x renamed `past_key_values` to `cache` (the old name is deprecated, removed in 5.40)
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {}  # as HF generate: last row only

    def step(self, new_ids: torch.Tensor) -> torch.Tensor:
        """Run (B, n) new ids (the whole prompt first, then one token) through the model; next logits (B, V)."""
        import torch

        positions = self.positions[:, -new_ids.shape[1]:]
        out = self.model(input_ids=new_ids, attention_mask=self.mask, position_ids=positions, use_cache=True,
                         **{self.cache_kw: self.cache}, **self.keep)
        cache = getattr(out, "cache", None)  # not `or`: an empty Cache is falsy
        self.cache = cache if cache is not None else out.past_key_values
        # grow mask and positions for the token that comes next
        self.positions = torch.cat([self.positions, self.positions[:, -1:] + 1], dim=-1)
        if self.mask is not None:
            self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=-1)
        return out.logits[:, -1]


def _eos_ids(model, tokenizer) -> set[int]:
    """The tokenizer's eos plus any listed in the model's generation config (e.g. chat models with two)."""
    ids = {tokenizer.eos_token_id} - {None}
    extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(extra) if isinstance(extra, list | tuple) else ({extra} - {None})
    return ids


def steered_generate(model, tokenizer, prompts_h: Sequence[Sequence[int]], prompts_0: Sequence[Sequence[int]],
                     lam: float, decoding: Decoding, batch_size: int, desc: str = "decode (steered)") -> list[str]:
    """CoS continuations of paired token-id prompts (with / without history), in input order.

    Batches hold prompts of similar h-length (longest first, as `generate`); each step runs one token through
    both KV caches, steers with `steer_logits`, penalises repeats over the h-context ids HF would count at
    `decoding.repetition_scope` (the generated ones, or the h prompt's too),
    then takes the argmax or samples. Rows stop at eos and are padded after; the batch stops when all rows have.
    Progress (examples done, ETA) is reported as `desc`.
    """
    import torch

    from nextquill.progress import Progress

    if len(prompts_h) != len(prompts_0):
        raise ValueError(f"{len(prompts_h)} prompts with history but {len(prompts_0)} without")
    order = sorted(range(len(prompts_h)), key=lambda i: -len(prompts_h[i]))
    texts: list[str] = [""] * len(prompts_h)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    eos = torch.tensor(sorted(_eos_ids(model, tokenizer)), dtype=torch.long, device=device)
    top_k = getattr(getattr(model, "generation_config", None), "top_k", None)
    top_k = 50 if top_k is None else top_k  # HF's global default, applied by `generate` whenever it samples
    model.eval()
    progress = Progress(len(prompts_h), desc, "examples")
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        views = (_Context(model, [prompts_h[i] for i in chunk], pad, device),
                 _Context(model, [prompts_0[i] for i in chunk], pad, device))
        seen = views[0].ids  # (B, T_h + t): the ids HF's repetition penalty would see with the h prompt
        width = seen.shape[1]
        # leading ids the penalty skips per row: the left pads (generate skips them at every scope), or the whole
        # prompt at scope `generated`
        pads = torch.tensor([width - len(prompts_h[i]) for i in chunk], dtype=torch.long, device=device)
        ignore = pads.clamp(min=decoding.penalty_start(width))  # (B,)
        new_h, new_0 = views[0].ids, views[1].ids
        unfinished = torch.ones(len(chunk), dtype=torch.bool, device=device)
        with torch.inference_mode():
            for _ in range(decoding.max_new_tokens):
                scores = steer_logits(views[0].step(new_h), views[1].step(new_0), lam)  # (B, V) float32
                scores = _repetition_penalty(scores, seen, decoding.repetition_penalty, ignore)
                nxt = _sample(scores, decoding, top_k) if decoding.do_sample else scores.argmax(dim=-1)
                nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad))  # finished rows only pad
                seen = torch.cat([seen, nxt[:, None]], dim=-1)
                unfinished &= ~torch.isin(nxt, eos)
                if not unfinished.any():
                    break
                new_h = new_0 = nxt[:, None]  # both contexts continue with the same token
        for row, i in enumerate(chunk):
            texts[i] = tokenizer.decode(seen[row, width:], skip_special_tokens=True).strip()
        progress.update(len(chunk))
    progress.close()
    return texts
