"""Profile summaries: the LLM-TRSR-style baseline, whose prompt carries a summary of the history, not the history.

The base model summarises each user's history once; every target of that user then shows the same one-entry
history, the summary. The summarised history is the one of the user's first target: under the DPL protocol
the profile, which is older than every target, so no target's text (nor any later review) reaches any prompt.
The entries that are newer than the profile are left out, as a summary written once per user must.
`prepare` uses it as the history "ranker" (`data.history_selection: summary`); the summaries are written
next to the prepared data (`summaries.jsonl`) to be read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from nextquill.data.schema import HistoryEntry, Target

log = logging.getLogger(__name__)
SYSTEM = "You write short, factual profiles of reviewers from their past reviews."
ASK = ("Describe this reviewer in two sentences: what they like and dislike, and how they write (length, tone, "
       "favourite phrases).")
LABEL = "Profile of the user, summarised from their past reviews"
REPETITION_PENALTY = 1.2  # the evaluation protocol's: greedy decoding of a 135M model loops without it


def summary_prompt(entries: Sequence[HistoryEntry]) -> list[dict[str, str]]:
    """The chat turns that ask for a profile of the user who wrote `entries` (newest first)."""
    body = "".join(f"[Review {i}]:\n" + "".join(f"- [{k}]: {v}\n" for k, v in e.fields)
                   for i, e in enumerate(entries, 1))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{body}\n{ASK}"}]


def prompt_ids(tokenizer, entries: Sequence[HistoryEntry], budget: int) -> tuple[list[int], int]:
    """Token ids of the summary prompt over the newest entries that fit `budget` tokens; (ids, entries used).

    At least one entry is kept; its text is cut to the budget when it alone does not fit.
    """
    def ids(chosen):
        turns = summary_prompt(chosen)
        if getattr(tokenizer, "chat_template", None):
            return list(tokenizer.apply_chat_template(turns, tokenize=True, add_generation_prompt=True,
                                                      return_dict=False))
        return tokenizer("\n".join(t["content"] for t in turns) + "\n", add_special_tokens=False)["input_ids"]

    used = 1
    while used < len(entries) and len(ids(entries[:used + 1])) <= budget:
        used += 1
    out = ids(entries[:used])
    return (out[-budget:] if len(out) > budget else out), used


class HistorySummarizer:
    """Replaces each target's history with its user's profile summary, written once per user (greedy decoding)."""

    def __init__(self, model_dir: Path, dtype: str, max_new_tokens: int, max_prompt_tokens: int):
        from nextquill.model.loading import inference_device, load_model

        self.model, self.tokenizer = load_model(model_dir, dtype)
        self.model.to(inference_device())
        self.max_new_tokens, self.budget = max_new_tokens, max_prompt_tokens
        self.summaries: dict[str, dict] = {}  # user_id -> {"summary", "entries"}

    def start_user(self) -> None:
        """Nothing to reset: summaries are kept per user id for the whole run (the ranker interface)."""

    def summarise(self, entries: Sequence[HistoryEntry]) -> tuple[str, int]:
        from nextquill.model.generation import Decoding, generate

        ids, used = prompt_ids(self.tokenizer, entries, self.budget)
        # The penalty counts the prompt's ids too: a profile should restate the history in few words, not copy it.
        decoding = Decoding(max_new_tokens=self.max_new_tokens, repetition_penalty=REPETITION_PENALTY,
                            do_sample=False, temperature=1.0, top_p=1.0, repetition_scope="all")
        text = generate(self.model, self.tokenizer, [ids], decoding, 1, desc=None)[0]
        return " ".join(text.split()), used

    def order(self, target: Target) -> list[HistoryEntry]:
        """The one-entry history of `target`: its user's summary (written at the user's first target)."""
        if target.user_id not in self.summaries:
            if not target.history:
                return []
            text, used = self.summarise(target.history)
            self.summaries[target.user_id] = {"user_id": target.user_id, "summary": text, "entries": used}
            if len(self.summaries) % 25 == 0:  # the user count is not known up front: a line every 25 users
                log.info("profile summaries: %d users done", len(self.summaries))
        text = self.summaries[target.user_id]["summary"]
        return [HistoryEntry(((LABEL, text or "(empty)"),), None, text)] if target.history else []
