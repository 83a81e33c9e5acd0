"""Read built DPL benchmark files (DPL-main per category and split, plus DPL-meta) into `Target`s.

Every record that does not become a Target goes to the `RejectLog` with its file, position and reason
(see `records.py`). A history entry whose item is not in DPL-meta is dropped from that history and
logged as `unknown_item`; a target whose own item is unknown rejects the whole record.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from nextquill.data.records import (
    NUMBER,
    TEXT,
    Problem,
    Spec,
    check_entries,
    check_fields,
    check_text,
    find_file,
    iter_records,
    reject,
)
from nextquill.data.schema import REVIEW_SYSTEM, SPLITS, HistoryEntry, RejectLog, Split, Target

log = logging.getLogger(__name__)

LIST_SUFFIXES = (".jsonl", ".jsonl.gz", ".json")
REVIEW_FIELDS: Spec = {"asin": TEXT, "rating": NUMBER, "text": TEXT, "timestamp": (int,), "title": TEXT}
ROW_FIELDS: Spec = {"user_id": TEXT, "profile": (list,), "data": (dict,)}
META_FIELDS: Spec = {"asin": TEXT, "title": TEXT, "description": TEXT}


def read_meta(raw_dir: Path, rejects: RejectLog) -> dict[str, tuple[str, str]]:
    """asin -> (title, description) from `raw_dir/meta.jsonl(.gz)` or `meta.json`; the first row of an asin wins."""
    path = find_file(raw_dir, "meta", LIST_SUFFIXES)
    if path is None:
        raise FileNotFoundError(f"{raw_dir}/meta.jsonl(.gz) or meta.json: DPL-meta file not found")
    meta: dict[str, tuple[str, str]] = {}
    for number, obj in iter_records(path, rejects):
        problem = check_fields(obj, META_FIELDS)
        if problem is None and obj["asin"] in meta:
            problem = "duplicate", f"asin {obj['asin']!r} already seen"
        if problem is not None:
            reject(rejects, path, number, *problem)
            continue
        meta[obj["asin"]] = (obj["title"], obj["description"])
    return meta


def read_dpl(raw_dir: Path, categories: list[str], rejects: RejectLog) -> Iterator[Target]:
    """Targets of `raw_dir/{Category}/{train,val,test}.jsonl(.gz)|.json`, joined with `raw_dir/meta`."""
    meta = read_meta(raw_dir, rejects)
    for category in categories:
        if not (raw_dir / category).is_dir():
            raise FileNotFoundError(f"{raw_dir / category}: DPL category folder not found")
        for split in SPLITS:
            path = find_file(raw_dir / category, split, LIST_SUFFIXES)
            if path is None:
                log.warning("%s/%s.jsonl(.gz) or .json not found: split %s of %s skipped",
                            raw_dir / category, split, split, category)
                continue
            yield from _read_dpl_split(path, category, split, meta, rejects)


def _dpl_problem(obj: dict, meta: dict[str, tuple[str, str]]) -> Problem:
    problem = (check_fields(obj, ROW_FIELDS) or check_fields(obj["data"], REVIEW_FIELDS, "data.")
               or check_entries(obj["profile"], REVIEW_FIELDS, "profile")
               or check_text(obj["data"]["text"], "data.text"))
    if problem is None and obj["data"]["asin"] not in meta:
        problem = "unknown_item", f"data.asin {obj['data']['asin']!r} is not in meta"
    return problem


def _read_dpl_split(path: Path, category: str, split: Split, meta: dict[str, tuple[str, str]],
                    rejects: RejectLog) -> Iterator[Target]:
    seen: set[tuple[str, str, str]] = set()
    per_user: Counter[str] = Counter()  # example_id numbers a user's kept targets in file order
    for number, obj in iter_records(path, rejects):
        problem = _dpl_problem(obj, meta)
        key = (obj["user_id"], obj["data"]["asin"], obj["data"]["text"]) if problem is None else None
        if key in seen:
            problem = "duplicate", f"user {key[0]!r} already has a target for asin {key[1]!r} with this text"
        if problem is not None:
            reject(rejects, path, number, *problem)
            continue
        seen.add(key)
        user, data = obj["user_id"], obj["data"]
        title, description = meta[data["asin"]]
        yield Target(
            example_id=f"{category}/{user}/{split}/{per_user[user]}", user_id=user, split=split, category=category,
            item_id=data["asin"], query=(("Item Title", title), ("Item Description", description)),
            question=(("Output Review Rating", str(float(data["rating"]))), ("Output Review Title", data["title"])),
            target=data["text"], history=_dpl_history(obj["profile"], meta, path, number, rejects),
            system=REVIEW_SYSTEM)
        per_user[user] += 1


def _dpl_history(profile: list[dict], meta: dict[str, tuple[str, str]], path: Path, number: int,
                 rejects: RejectLog) -> tuple[HistoryEntry, ...]:
    """Newest first; an entry whose item left meta is dropped, but logged, and the target is kept."""
    entries = []
    for index, review in enumerate(profile):
        if review["asin"] not in meta:
            reject(rejects, path, number, "unknown_item",
                   f"profile[{index}].asin {review['asin']!r} is not in meta; history entry dropped")
            continue
        title, description = meta[review["asin"]]
        fields = (("Item Title", title), ("Item Description", description),
                  ("Review Rating", str(float(review["rating"]))), ("Review Title", review["title"]),
                  ("Review Text", review["text"]))
        entries.append(HistoryEntry(fields=fields, timestamp=review["timestamp"],
                                    relevance_text=f"{title} {review['title']} {review['text']}"))
    return tuple(sorted(entries, key=lambda entry: -entry.timestamp))  # stable: ties keep file order
