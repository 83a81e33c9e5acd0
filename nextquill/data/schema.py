"""The format-independent shape of one training target, and the ledger of what became of each input record.

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
# NextQuill's system line, verbatim from the official code (docs/method.md, prompt format); its trailing newline is
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
    sources: tuple[str, ...] = ()  # input files whose record this target is (kept or dropped when written)


@dataclass
class FileCounts:
    """What happened to the records of one input file: read = kept + rejected + dropped."""

    read: int = 0
    kept: int = 0
    rejects: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        rejected, dropped = sum(self.rejects.values()), sum(self.drops.values())
        return {"read": self.read, "kept": self.kept, "rejected": rejected, "dropped": dropped,
                "rejects": dict(sorted(self.rejects.items())), "drops": dict(sorted(self.drops.items()))}

    @property
    def balanced(self) -> bool:
        return self.read == self.kept + sum(self.rejects.values()) + sum(self.drops.values())


@dataclass
class Ledger:
    """The fate of every input record, per file: read, then kept, rejected (malformed) or dropped (filtered).

    Rejects are also written to `handle` as JSON lines (file, line, reason, detail); their reasons must
    be in `validate.REASONS`. A kept record may lose one history entry (its item is unknown): that is
    logged with the record's position and counted in `entry_drops`, apart from the record counts.
    """

    handle: IO[str] | None = None
    files: dict[str, FileCounts] = field(default_factory=dict)
    entry_drops: Counter = field(default_factory=Counter)

    def _file(self, file: str | Path) -> FileCounts:
        key = str(file)
        counts = self.files.get(key)  # called once per record: build a FileCounts only for a new file
        if counts is None:
            counts = self.files[key] = FileCounts()
        return counts

    def _log(self, row: dict) -> None:
        if self.handle is not None:
            self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def read(self, file: str | Path, n: int = 1) -> None:
        self._file(file).read += n

    def keep(self, file: str | Path, n: int = 1) -> None:
        self._file(file).kept += n

    def drop(self, file: str | Path, reason: str, n: int = 1) -> None:
        """`n` valid records of `file` removed by a filter (the DPL protocol, an unused gold, ...)."""
        self._file(file).drops[reason] += n

    def reject(self, file: str | Path, line: int | None, reason: str, detail: str = "") -> None:
        from nextquill.data.validate import REASONS

        if reason not in REASONS:
            raise ValueError(f"reject reason {reason!r} is not in nextquill.data.validate.REASONS")
        self._file(file).rejects[reason] += 1
        self._log({"file": str(file), "line": line, "reason": reason, "detail": _safe(detail)[:300]})

    def drop_entry(self, file: str | Path, line: int | None, reason: str, detail: str) -> None:
        self.entry_drops[reason] += 1
        self._log({"file": str(file), "line": line, "reason": reason, "detail": _safe(detail)[:300],
                   "scope": "history_entry"})

    @property
    def counts(self) -> Counter:
        """Rejects by reason, over every file."""
        total: Counter = Counter()
        for counts in self.files.values():
            total.update(counts.rejects)
        return total

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def records(self) -> int:
        return sum(counts.read for counts in self.files.values())

    def unbalanced(self) -> list[str]:
        """Files whose counts do not add up (a bug in the stage, never in the data)."""
        return [f"{name}: {counts.as_dict()}" for name, counts in self.files.items() if not counts.balanced]


def _safe(text: str) -> str:
    """A detail quoting raw input may hold a lone surrogate; escape it so the log stays valid UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
