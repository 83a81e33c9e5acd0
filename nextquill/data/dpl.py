"""Read built DPL benchmark files (DPL-main per category and split, plus DPL-meta) into `Target`s.

Every record that does not become a Target goes to the `Ledger` with its file, position and reason
(see `records.py` and `validate.py`). A history entry whose item is not in DPL-meta is left out of that
history and logged as `unknown_item` (the record is kept); a target whose own item is unknown is rejected.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from nextquill.data.records import find_file, iter_records, reject
from nextquill.data.schema import REVIEW_SYSTEM, SPLITS, HistoryEntry, Ledger, Split, Target
from nextquill.data.validate import (
    Checked,
    Invalid,
    Kind,
    Limits,
    Spec,
    check,
    check_entries,
    check_size,
    require_text,
)

log = logging.getLogger(__name__)

LIST_SUFFIXES = (".jsonl", ".jsonl.gz", ".json")
REVIEW_FIELDS: Spec = {"asin": Kind.ID, "rating": Kind.RATING, "text": Kind.TEXT, "timestamp": Kind.TIMESTAMP_MS,
                       "title": Kind.LINE}
ROW_FIELDS: Spec = {"user_id": Kind.ID, "profile": Kind.LIST, "data": Kind.OBJECT}
META_FIELDS: Spec = {"asin": Kind.ID, "title": Kind.LINE, "description": Kind.TEXT}


def read_meta(raw_dir: Path, ledger: Ledger, limits: Limits) -> dict[str, tuple[str, str]]:
    """asin -> (title, description) from `raw_dir/meta.jsonl(.gz)` or `meta.json`; the first row of an asin wins."""
    path = find_file(raw_dir, "meta", LIST_SUFFIXES)
    if path is None:
        raise FileNotFoundError(f"{raw_dir}/meta.jsonl(.gz) or meta.json: DPL-meta file not found")
    meta: dict[str, tuple[str, str]] = {}
    for number, obj in iter_records(path, ledger):
        try:
            row = check(obj, META_FIELDS, limits)
            check_size(row.chars, limits, "item metadata")
            if row["asin"] in meta:
                raise Invalid("duplicate", f"asin {row['asin']!r} already seen")
        except Invalid as err:
            reject(ledger, path, number, err.reason, err.detail)
            continue
        meta[row["asin"]] = (row["title"], row["description"])
        ledger.keep(path)
    return meta


def read_dpl(raw_dir: Path, categories: list[str], ledger: Ledger, limits: Limits) -> Iterator[Target]:
    """Targets of `raw_dir/{Category}/{train,val,test}.jsonl(.gz)|.json`, joined with `raw_dir/meta`."""
    meta = read_meta(raw_dir, ledger, limits)
    for category in categories:
        if not (raw_dir / category).is_dir():
            raise FileNotFoundError(f"{raw_dir / category}: DPL category folder not found")
        for split in SPLITS:
            path = find_file(raw_dir / category, split, LIST_SUFFIXES)
            if path is None:
                log.warning("%s/%s.jsonl(.gz) or .json not found: split %s of %s skipped",
                            raw_dir / category, split, split, category)
                continue
            yield from _read_dpl_split(path, category, split, meta, ledger, limits)


def _dpl_record(obj: dict, meta: dict[str, tuple[str, str]], limits: Limits) -> tuple[Checked, Checked, list]:
    """(row, its data, its profile entries), checked; `Invalid` when the record cannot be used."""
    row = check(obj, ROW_FIELDS, limits)
    data = check(row["data"], REVIEW_FIELDS, limits, "data.")
    check_size(data.chars, limits, "data")
    require_text(data["text"], "data.text")
    profile, _ = check_entries(row["profile"], REVIEW_FIELDS, limits, "profile")
    if data["asin"] not in meta:
        raise Invalid("unknown_item", f"data.asin {data['asin']!r} is not in meta")
    return row, data, profile


def _read_dpl_split(path: Path, category: str, split: Split, meta: dict[str, tuple[str, str]],
                    ledger: Ledger, limits: Limits) -> Iterator[Target]:
    seen: set[tuple[str, str, str]] = set()
    per_user: Counter[str] = Counter()  # example_id numbers a user's kept targets in file order
    for number, obj in iter_records(path, ledger):
        try:
            row, data, profile = _dpl_record(obj, meta, limits)
            key = (row["user_id"], data["asin"], data["text"])
            if key in seen:
                raise Invalid("duplicate", f"user {key[0]!r} already has a target for asin {key[1]!r} with this text")
        except Invalid as err:
            reject(ledger, path, number, err.reason, err.detail)
            continue
        seen.add(key)
        user = row["user_id"]
        title, description = meta[data["asin"]]
        yield Target(
            example_id=f"{category}/{user}/{split}/{per_user[user]}", user_id=user, split=split, category=category,
            item_id=data["asin"], query=(("Item Title", title), ("Item Description", description)),
            question=(("Output Review Rating", str(data["rating"])), ("Output Review Title", data["title"])),
            target=data["text"], history=_dpl_history(profile, meta, path, number, ledger),
            system=REVIEW_SYSTEM, sources=(str(path),))
        per_user[user] += 1


def _dpl_history(profile: list[Checked], meta: dict[str, tuple[str, str]], path: Path, number: int,
                 ledger: Ledger) -> tuple[HistoryEntry, ...]:
    """Newest first; an entry whose item left meta is dropped, but logged, and the target is kept."""
    entries = []
    for index, review in enumerate(profile):
        if review["asin"] not in meta:
            ledger.drop_entry(path, number, "unknown_item",
                              f"profile[{index}].asin {review['asin']!r} is not in meta; history entry dropped")
            continue
        title, description = meta[review["asin"]]
        fields = (("Item Title", title), ("Item Description", description),
                  ("Review Rating", str(review["rating"])), ("Review Title", review["title"]),
                  ("Review Text", review["text"]))
        entries.append(HistoryEntry(fields=fields, timestamp=review["timestamp"],
                                    relevance_text=f"{title} {review['title']} {review['text']}"))
    return tuple(sorted(entries, key=lambda entry: -entry.timestamp))  # stable: ties keep file order
