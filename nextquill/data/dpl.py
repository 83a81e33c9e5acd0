"""Read built DPL benchmark files (DPL-main per category and split, plus DPL-meta) into `Target`s.

Also home of the record-level helpers that `lamp.py` shares: streaming JSONL (a bad line rejects only
that line), JSON-list and Parquet files, field type checks, and rejects that say where a record was.
Every record that does not become a Target goes to the `RejectLog` with its file, position and reason;
positions are 1-based lines in JSONL files and 0-based record indexes in JSON-list and Parquet files.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from nextquill.data.schema import HistoryEntry, RejectLog, Split, Target

log = logging.getLogger(__name__)

Spec = dict[str, tuple[type, ...]]  # field -> accepted Python types
Problem = tuple[str, str] | None  # (reason, detail), or None when the record is fine

TEXT: tuple[type, ...] = (str,)
NUMBER: tuple[type, ...] = (int, float)
SPLITS: tuple[Split, ...] = ("train", "val", "test")
LIST_SUFFIXES = (".jsonl", ".jsonl.gz", ".json")
# NextQuill's system line, verbatim (method.md section 11); it ends in "\n" because the template adds none.
SYSTEM = ("Given the title and description of an item, along with the user's past reviews and the output review "
          "rating and review title, generate a personalized item review for the user.\n")
REVIEW_FIELDS: Spec = {"asin": TEXT, "rating": NUMBER, "text": TEXT, "timestamp": (int,), "title": TEXT}
ROW_FIELDS: Spec = {"user_id": TEXT, "profile": (list,), "data": (dict,)}
META_FIELDS: Spec = {"asin": TEXT, "title": TEXT, "description": TEXT}


# ---------------------------------------------------------------- shared record helpers (also used by lamp.py)

def find_file(folder: Path, stem: str, suffixes: Iterable[str]) -> Path | None:
    """The first `folder/stem+suffix` that exists, in the order of `suffixes`."""
    for suffix in suffixes:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def is_jsonl(path: Path) -> bool:
    return path.name.endswith((".jsonl", ".jsonl.gz"))


def reject(rejects: RejectLog, path: Path, number: int, reason: str, detail: str = "") -> None:
    """Log one unusable record; for list files the detail says the position is a 0-based index."""
    if not is_jsonl(path):
        detail = f"record index {number} (0-based): {detail}"
    rejects.add(path, number, reason, detail)


def load_json(path: Path, expected: type) -> object:
    """A whole JSON file of type `expected`; any file-level problem is a ValueError naming the file."""
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not valid UTF-8 (byte {err.start}: {err.reason})") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(obj, expected):
        raise ValueError(f"{path}: top level is a JSON {type(obj).__name__}, expected a {expected.__name__}")
    return obj


def _jsonl_items(path: Path, rejects: RejectLog) -> Iterator[tuple[int, object]]:
    # Decode each line on its own, so one bad byte or bracket loses only its own record.
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                reject(rejects, path, number, "invalid_utf8", f"byte {err.start}: {err.reason}")
            except json.JSONDecodeError as err:
                reject(rejects, path, number, "malformed_json", str(err))


def _parquet_items(path: Path) -> Iterator[tuple[int, object]]:
    try:
        batches = pq.ParquetFile(path).iter_batches()
        rows = (row for batch in batches for row in batch.to_pylist())
        yield from enumerate(rows)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"{path}: not a readable Parquet file ({err})") from err


def iter_records(path: Path, rejects: RejectLog) -> Iterator[tuple[int, dict]]:
    """(position, record) for every usable object in a .jsonl(.gz), .json list or .parquet file."""
    if is_jsonl(path):
        items: Iterable[tuple[int, object]] = _jsonl_items(path, rejects)
    elif path.suffix == ".parquet":
        items = _parquet_items(path)
    elif path.suffix == ".json":
        items = enumerate(load_json(path, list))
    else:
        raise ValueError(f"{path}: unsupported file type (expected .jsonl, .jsonl.gz, .json or .parquet)")
    for number, obj in items:
        if isinstance(obj, dict):
            yield number, obj
        else:
            reject(rejects, path, number, "wrong_type", f"record is a {type(obj).__name__}, expected an object")


def check_fields(obj: dict, spec: Spec, prefix: str = "") -> Problem:
    """The first missing or wrongly typed field of `obj` (named with `prefix`), or None."""
    for name, types in spec.items():
        value = obj.get(name)
        if value is None:
            return "missing_field", f"{prefix}{name}"
        # bool is an int subclass, but a true/false rating or id is a data error, not a number
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            return "wrong_type", f"{prefix}{name}: expected {expected}, got {type(value).__name__} {str(value)[:40]!r}"
    return None


def check_entries(entries: list, spec: Spec, name: str) -> Problem:
    """The first problem among the objects of a list field such as `profile`, or None."""
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            return "wrong_type", f"{name}[{index}]: expected an object, got {type(entry).__name__}"
        problem = check_fields(entry, spec, f"{name}[{index}].")
        if problem is not None:
            return problem
    return None


def check_text(value: str, name: str) -> Problem:
    return ("empty_text", f"{name} is empty or whitespace") if not value.strip() else None


# ---------------------------------------------------------------- DPL

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
            target=data["text"], history=_dpl_history(obj["profile"], meta, path, number, rejects), system=SYSTEM)
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
