"""Turn `Target`s into example rows, one Parquet file per split, and count what happened to each.

The rows carry both views as text and as token ids, the target ids (ending in eos), how much
history fitted, every truncation flag and, for the synthetic benchmark, one preference label per
target token from the ground-truth character spans.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from nextquill.data.prompts import Views, build_views, token_labels
from nextquill.data.schema import REVIEW_SYSTEM, SPLITS, HistoryEntry, Target


def example_schema():
    import pyarrow as pa

    ids = pa.list_(pa.int32())
    return pa.schema([
        ("example_id", pa.string()), ("user_id", pa.string()), ("split", pa.string()), ("category", pa.string()),
        ("item_id", pa.string()), ("prompt_with", pa.string()), ("prompt_without", pa.string()),
        ("target", pa.string()), ("prompt_ids_with", ids), ("prompt_ids_without", ids), ("target_ids", ids),
        ("n_history", pa.int32()), ("n_history_available", pa.int32()), ("target_truncated", pa.bool_()),
        ("query_truncated", pa.bool_()), ("pref_labels", pa.list_(pa.int8())),
    ])


def review_entry(row: dict, meta: tuple[str, str]) -> HistoryEntry:
    title, description = meta
    fields = (("Item Title", title), ("Item Description", description), ("Review Rating", str(row["rating"])),
              ("Review Title", row["title"]), ("Review Text", row["text"]))
    return HistoryEntry(fields, row["timestamp"], f"{title} {row['title']} {row['text']}")


def amazon_targets(category: str, user_id: str, rows: list[dict], meta: dict, truth: dict | None,
                   held_out: int) -> Iterator[Target]:
    """DPL targets of one user: for input i, history = profile + inputs[:i]; the last two are val and test."""
    inputs = sorted((r for r in rows if r["is_input"]), key=lambda r: r["input_pos"])
    entries = [review_entry(r, meta[(category, r["parent_asin"])]) for r in rows if not r["is_input"]]
    for pos, row in enumerate(inputs):
        split = "train" if pos < held_out - 2 else "val" if pos == held_out - 2 else "test"
        title, description = meta[(category, row["parent_asin"])]
        spans = truth.get((user_id, row["parent_asin"], row["timestamp"])) if truth is not None else None
        yield Target(
            example_id=f"{category}/{user_id}/{split}/{pos}", user_id=user_id, split=split, category=category,
            item_id=row["parent_asin"], query=(("Item Title", title), ("Item Description", description)),
            question=(("Output Review Rating", str(row["rating"])), ("Output Review Title", row["title"])),
            target=row["text"], history=tuple(reversed(entries)), system=REVIEW_SYSTEM, target_spans=spans,
        )
        entries.append(review_entry(row, (title, description)))


class ExampleWriter:
    """One Parquet file per split under `out`, plus the counts that go to data_stats.json."""

    def __init__(self, out: Path, ledger=None, batch_rows: int = 2_000):
        from nextquill.io import ParquetSink

        self.ledger = ledger  # counts each target's source records kept or dropped
        schema = example_schema()
        self.sinks = {split: ParquetSink(out / f"{split}.parquet", schema, batch_rows) for split in SPLITS}
        self.examples: Counter = Counter()
        self.truncations: Counter = Counter()
        self.history: list[int] = []
        self.available: list[int] = []
        self.pref_tokens = [0, 0]  # preference-bearing, all labelled target tokens
        self.users: set[tuple[str, str]] = set()

    def add(self, target: Target, views: Views | None, k: int) -> None:
        if views is None:
            self.truncations["prompt_question_too_long"] += 1  # counted, and not written
            for source in target.sources if self.ledger is not None else ():
                self.ledger.drop(source, "prompt_question_too_long")
            return
        for source in target.sources if self.ledger is not None else ():
            self.ledger.keep(source)
        labels = None
        if target.target_spans is not None:
            labels = token_labels(views.target_token_spans, target.target, target.target_spans)
            self.pref_tokens[0] += sum(labels)
            self.pref_tokens[1] += len(labels)
        self.examples[(target.split, target.category)] += 1
        self.users.add((target.category, target.user_id))
        self.history.append(views.n_history)
        self.available.append(len(target.history))
        self.truncations["target_truncated"] += views.target_truncated
        self.truncations["query_truncated"] += views.query_truncated
        self.truncations["history_cut_by_budget"] += views.n_history < min(k, len(target.history))
        self.sinks[target.split].append({
            "example_id": target.example_id, "user_id": target.user_id, "split": target.split,
            "category": target.category, "item_id": target.item_id, "prompt_with": views.prompt_with,
            "prompt_without": views.prompt_without, "target": target.target,
            "prompt_ids_with": views.prompt_ids_with, "prompt_ids_without": views.prompt_ids_without,
            "target_ids": views.target_ids, "n_history": views.n_history, "n_history_available": len(target.history),
            "target_truncated": views.target_truncated, "query_truncated": views.query_truncated,
            "pref_labels": labels,
        })

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()

    def stats(self) -> dict:
        per_split = {s: sum(n for (split, _), n in self.examples.items() if split == s) for s in SPLITS}
        per_category: dict = {}
        for (split, category), n in sorted(self.examples.items()):
            per_category.setdefault(category, {})[split] = n
        out = {"examples": per_split, "examples_by_category": per_category,
               "history_length": _distribution(self.history), "history_available": _distribution(self.available),
               "truncation": dict(sorted(self.truncations.items()))}
        if self.pref_tokens[1]:
            out["preference_token_fraction"] = round(self.pref_tokens[0] / self.pref_tokens[1], 4)
        return out


def _distribution(values: list[int]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"count": len(values), "min": ordered[0], "p50": pick(0.5), "p90": pick(0.9), "max": ordered[-1],
            "mean": round(statistics.fmean(values), 2)}


def write_targets(targets, writer: ExampleWriter, tokenizer, cfg, ranker=None) -> None:
    """Render and write every target; `ranker` orders history by relevance when given."""
    for target in targets:
        ordered = ranker.order(target) if ranker is not None else target.history
        views = build_views(tokenizer, target, ordered, k=cfg.history_k, max_prompt_tokens=cfg.max_prompt_tokens,
                            max_target_tokens=cfg.max_target_tokens, empty=cfg.empty_history)
        writer.add(target, views, cfg.history_k)
