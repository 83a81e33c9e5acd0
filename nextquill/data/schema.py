"""The format-independent shape of one training target, and the log of rejected input records.

Every reader (Amazon Reviews 2023, DPL, LaMP, LongLaMP) yields `Target`s; `prompts.py` renders them
into the two views the method needs. Field order in `query`, `question` and each history entry is the
order the prompt shows them in.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
# NextQuill's system line, verbatim from the official code (method.md section 11); its trailing newline is
# part of it, since the official template adds none after the system text.
REVIEW_SYSTEM = (
    "Given the title and description of an item, along with the user's past reviews and the output review "
    "rating and review title, generate a personalized item review for the user.\n"
)
Fields = tuple[tuple[str, str], ...]  # ordered (label, value) pairs, rendered as "[label]: value"


@dataclass(frozen=True)
class HistoryEntry:
    fields: Fields
    timestamp: int | None = None  # for recency; None where the format has no time
    relevance_text: str = ""  # what the relevance ranker embeds


@dataclass(frozen=True)
class Target:
    example_id: str  # unique and stable: format-specific, e.g. "Books/<user>/train/3"
    user_id: str
    split: Split
    category: str  # Amazon category, or the LaMP/LongLaMP task name
    item_id: str  # parent_asin, or the LaMP/LongLaMP record id
    query: Fields  # shown before the history (item title and description)
    question: Fields  # shown after the history (output rating and title; or the task input)
    target: str  # the text the user wrote
    history: tuple[HistoryEntry, ...]  # newest first where the format has time, else as published
    system: str  # the system instruction
    history_label: str = "User's Past Reviews"
    entry_label: str = "Review"
    target_spans: tuple[tuple[int, int], ...] | None = None  # truth: preference-bearing character spans


@dataclass
class RejectLog:
    """Every input record that is not used: where it was, and why. Written as JSONL; counted by reason."""

    handle: IO[str] | None = None
    counts: Counter = field(default_factory=Counter)

    def add(self, file: str | Path, line: int | None, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        if self.handle is not None:
            row = {"file": str(file), "line": line, "reason": reason, "detail": detail[:300]}
            self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    @property
    def total(self) -> int:
        return sum(self.counts.values())
