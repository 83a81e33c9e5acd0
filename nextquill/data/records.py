"""Record-level helpers shared by every reader: stream a file, type-check fields, log rejects with positions.

JSONL files are read line by line and decoded per line, so one bad byte or bracket loses only its own
record; JSON-list and Parquet files are read as wholes. Positions are 1-based lines in JSONL files and
0-based record indexes in JSON-list and Parquet files (the reject's detail says which).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from nextquill.data.schema import RejectLog

Spec = dict[str, tuple[type, ...]]  # field -> accepted Python types
Problem = tuple[str, str] | None  # (reason, detail), or None when the record is fine

TEXT: tuple[type, ...] = (str,)
NUMBER: tuple[type, ...] = (int, float)



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
            if not raw.strip():
                reject(rejects, path, number, "empty_line")
                continue
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
