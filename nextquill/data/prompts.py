"""Render a `Target` into the two views of the method and fit them into the token budget.

With history, the user block lists up to K past entries; without history (the intervention H=∅),
the same block holds a literal (`None`, as in the official code) and everything else is identical.
The question part (item, output rating and title) is reserved first; history entries are added in
preference order (newest or most relevant first) while the prompt fits `max_prompt_tokens`, so
entries are dropped least recent (least relevant) first. The tokenizer's chat template is used when
it has one. Targets longer than `max_target_tokens` are cut, and the cut is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from nextquill.data.schema import HistoryEntry, Target


@dataclass(frozen=True)
class Views:
    prompt_with: str
    prompt_without: str
    prompt_ids_with: list[int]
    prompt_ids_without: list[int]
    target_ids: list[int]
    n_history: int  # entries that fit the budget
    target_truncated: bool
    query_truncated: bool  # the question part alone overflowed and the item description was shortened
    target_token_spans: list[tuple[int, int]]  # char span of each target token (without the final eos)


def _fields(fields, indent: str = "") -> str:
    return "".join(f"{indent}[{label}]: {value}\n" for label, value in fields)


def render_user_message(target: Target, history: Sequence[HistoryEntry] | None, empty: str) -> str:
    """The user turn; `history=None` renders the no-history view.

    As in the official construction, the history block is followed by a blank line, while the no-history
    literal is followed directly by the question part: `...:\nNone\n[Output Review Rating]: ...`.
    """
    if history is None:
        block = f"{empty}\n"
    else:
        entries = "".join(f"[{target.entry_label} {i}]:\n{_fields(e.fields, '- ')}" for i, e in enumerate(history, 1))
        block = f"{entries}\n"
    return f"{_fields(target.query)}[{target.history_label}]:\n{block}{_fields(target.question)}"


def render_prompt(tokenizer, target: Target, history: Sequence[HistoryEntry] | None, empty: str) -> str:
    user = render_user_message(target, history, empty)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": target.system}, {"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{target.system}\n{user}\n"  # plain layout for tokenizers without a template


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _shorten_query(tokenizer, target: Target, budget: int, empty: str) -> Target | None:
    """Cut the longest query field (the item description) until the no-history prompt fits, or None."""
    if not target.query:
        return None
    longest = max(range(len(target.query)), key=lambda i: len(target.query[i][1]))
    label, value = target.query[longest]
    overflow = len(_ids(tokenizer, render_prompt(tokenizer, target, [], empty))) - budget
    ids = _ids(tokenizer, value)
    if overflow >= len(ids):
        return None
    short = tokenizer.decode(ids[: len(ids) - overflow - 8]) + " ..."
    query = (*target.query[:longest], (label, short), *target.query[longest + 1:])
    return Target(**{**target.__dict__, "query": query})


@lru_cache(maxsize=16_384)
def _entry_tokens(tokenizer, fields) -> int:
    """Tokens of one history entry; cached because an entry recurs in each later target of its user."""
    return len(_ids(tokenizer, _fields(fields, "- "))) + 6  # +6: "[Review i]:\n"


def fit_history(tokenizer, target: Target, ordered: Sequence[HistoryEntry], k: int, budget: int, base: int):
    """The longest prefix of `ordered[:k]` whose prompt fits `budget` tokens, and that prompt's ids.

    `base` is the token count of the prompt with an empty history block.
    """
    chosen = list(ordered[:k])
    sizes = [_entry_tokens(tokenizer, e.fields) for e in chosen]
    total, n = base, 0
    while n < len(chosen) and total + sizes[n] <= budget:  # estimate, then verify on the real text
        total += sizes[n]
        n += 1
    while True:
        text = render_prompt(tokenizer, target, chosen[:n], "")  # a non-empty history never shows the literal
        ids = _ids(tokenizer, text)
        if len(ids) <= budget or n == 0:
            return n, text, ids
        n -= 1


def build_views(tokenizer, target: Target, ordered: Sequence[HistoryEntry], *, k: int, max_prompt_tokens: int,
                max_target_tokens: int, empty: str) -> Views | None:
    """Both views of `target`, or None when even the question part cannot fit the budget."""
    query_truncated = False
    base = len(_ids(tokenizer, render_prompt(tokenizer, target, [], empty)))
    if base > max_prompt_tokens:
        target = _shorten_query(tokenizer, target, max_prompt_tokens, empty)
        if target is None:
            return None
        query_truncated = True
        base = len(_ids(tokenizer, render_prompt(tokenizer, target, [], empty)))
    n, prompt_with, ids_with = fit_history(tokenizer, target, ordered, k, max_prompt_tokens, base)
    prompt_without = render_prompt(tokenizer, target, None, empty)
    encoded = tokenizer(target.target, add_special_tokens=False, return_offsets_mapping=True)
    target_ids, offsets = encoded["input_ids"], [tuple(o) for o in encoded["offset_mapping"]]
    truncated = len(target_ids) + 1 > max_target_tokens
    if truncated:  # keep room for the eos that ends every target
        target_ids, offsets = target_ids[: max_target_tokens - 1], offsets[: max_target_tokens - 1]
    return Views(
        prompt_with=prompt_with,
        prompt_without=prompt_without,
        prompt_ids_with=ids_with,
        prompt_ids_without=_ids(tokenizer, prompt_without),
        target_ids=[*target_ids, tokenizer.eos_token_id],
        n_history=n,
        target_truncated=truncated,
        query_truncated=query_truncated,
        target_token_spans=offsets,
    )


def token_labels(token_spans: Sequence[tuple[int, int]], text: str, spans: Sequence[tuple[int, int]]) -> list[int]:
    """1 for each target token whose non-space characters overlap a preference span, else 0; eos gets 0.

    Byte-level tokenizers fold the leading space into the token (" hugely"), so a token counts by
    its visible characters only.
    """
    labels = []
    for start, end in token_spans:
        while start < end and text[start].isspace():
            start += 1
        labels.append(int(any(start < s_end and s_start < end for s_start, s_end in spans)))
    return [*labels, 0]
