"""Batched generation from token-id prompts, and the decoding settings every decoder shares.

Prompts are sorted by length, left-padded, always with the attention mask, with the KV cache; greedy
with repetition penalty 1.2 (the official protocol) unless `params.eval` says otherwise. The penalty counts
only the ids the model generated (`repetition_scope: generated`) unless the scope is `all`, transformers'
default: there it also counts every prompt id but the left pads (`generate` skips them), so a history in the
prompt makes the user's own words costlier to write, and the longer the history, the more words it taxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Decoding:
    """Generation settings; built from `params.eval` by `from_config`, so no value is written twice."""

    max_new_tokens: int
    repetition_penalty: float
    do_sample: bool
    temperature: float
    top_p: float
    repetition_scope: str  # "generated" | "all": see the module docstring

    def penalty_start(self, width: int) -> int:
        """First position of a (B, width + t) id matrix the repetition penalty counts."""
        return width if self.repetition_scope == "generated" else 0

    @classmethod
    def from_config(cls, cfg, **overrides) -> Decoding:
        """From an `EvalConfig`; `overrides` replace fields (e.g. max_new_tokens)."""
        values = {"max_new_tokens": cfg.max_new_tokens, "repetition_penalty": cfg.repetition_penalty,
                  "do_sample": cfg.do_sample, "temperature": cfg.temperature, "top_p": cfg.top_p,
                  "repetition_scope": cfg.repetition_scope}
        return cls(**(values | overrides))


def generate(model, tokenizer, prompts: Sequence[Sequence[int]], decoding: Decoding, batch_size: int,
             desc: str | None = "decode") -> list[str]:
    """Continuations of token-id prompts, in input order; batches hold prompts of similar length.

    Progress (examples done, ETA) is reported as `desc`; None reports none (a caller that decodes one prompt at
    a time reports its own).
    """
    import torch

    from nextquill.progress import Progress

    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    texts: list[str] = [""] * len(prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sampling = {"temperature": decoding.temperature, "top_p": decoding.top_p} if decoding.do_sample else {}
    model.eval()
    progress = Progress(len(prompts), desc, "examples") if desc is not None else None
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(prompts[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(chunk):
            ids[row, width - len(prompts[i]):] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]):] = 1
        device = next(model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=decoding.max_new_tokens,
                                 do_sample=decoding.do_sample, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id,
                                 use_cache=True, **sampling, **penalty_kwargs(decoding, width))
        for row, i in enumerate(chunk):
            texts[i] = tokenizer.decode(out[row, width:], skip_special_tokens=True).strip()
        if progress is not None:
            progress.update(len(chunk))
    if progress is not None:
        progress.close()
    return texts


def penalty_kwargs(decoding: Decoding, width: int) -> dict:
    """`generate` keyword arguments for the repetition penalty over prompts `width` ids wide (left-padded)."""
    start = decoding.penalty_start(width)
    if start == 0 or decoding.repetition_penalty == 1.0:
        return {"repetition_penalty": decoding.repetition_penalty}
    from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor

    # transformers' own processor, told to skip the prompt: the same penalty on the generated ids only.
    processor = RepetitionPenaltyLogitsProcessor(float(decoding.repetition_penalty), prompt_ignore_length=start)
    return {"repetition_penalty": 1.0, "logits_processor": LogitsProcessorList([processor])}
