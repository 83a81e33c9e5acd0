"""Stream raw Amazon Reviews 2023 files into typed Parquet, rejecting bad records with file and line.

The raw Books file holds about 29 million reviews, so nothing here holds a file as Python objects:
lines are parsed one at a time, checked, and appended to column buffers that are flushed to Parquet
every `batch_rows` rows. Each kept row carries its file id and 1-based line number, so any later
filter can still say exactly which input line it dropped.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from nextquill.data.schema import RejectLog
from nextquill.io import ParquetSink

REVIEW_SCHEMA = pa.schema([
    ("file_id", pa.int32()), ("line", pa.int64()), ("category", pa.string()), ("user_id", pa.string()),
    ("parent_asin", pa.string()), ("rating", pa.float64()), ("title", pa.string()), ("text", pa.string()),
    ("timestamp", pa.int64()),
])
META_SCHEMA = pa.schema([
    ("file_id", pa.int32()), ("line", pa.int64()), ("category", pa.string()), ("parent_asin", pa.string()),
    ("title", pa.string()), ("description", pa.string()), ("n_categories", pa.int32()),
    ("rating_number", pa.int64()),
])
# field -> accepted Python types (JSON numbers may come as int or float; bool is not a number here)
REVIEW_FIELDS = {"user_id": (str,), "parent_asin": (str,), "rating": (int, float), "title": (str,),
                 "text": (str,), "timestamp": (int,)}
META_FIELDS = {"parent_asin": (str,), "title": (str,), "description": (list,), "categories": (list,),
               "rating_number": (int, type(None))}


def raw_file(folder: Path, stem: str) -> Path:
    """`stem.jsonl` or `stem.jsonl.gz`, whichever exists (error naming both when neither does)."""
    for suffix in (".jsonl", ".jsonl.gz"):
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{folder / stem}.jsonl(.gz): raw file not found")


def iter_json_lines(path: Path, rejects: RejectLog) -> Iterator[tuple[int, dict | None]]:
    """(1-based line, object) for every line; the object is None when the line went to `rejects`."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                rejects.add(path, number, "empty_line")
                yield number, None
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                rejects.add(path, number, "invalid_utf8", f"byte {err.start}: {err.reason}")
                yield number, None
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                rejects.add(path, number, "malformed_json", str(err))
                yield number, None
                continue
            if not isinstance(obj, dict):
                rejects.add(path, number, "wrong_type", f"record is a {type(obj).__name__}, expected an object")
                yield number, None
                continue
            yield number, obj


def check_fields(obj: dict, fields: dict[str, tuple[type, ...]]) -> tuple[str, str] | None:
    """(reason, detail) for the first missing or wrongly typed field, or None when all are fine."""
    for name, types in fields.items():
        if name not in obj or (obj[name] is None and type(None) not in types):
            return "missing_field", name
        value = obj[name]
        if isinstance(value, bool) or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            return "wrong_type", f"{name}: expected {expected}, got {type(value).__name__} {str(value)[:40]!r}"
    return None


def review_row(obj: dict) -> dict:
    return {k: obj[k] for k in ("user_id", "parent_asin", "title", "text", "timestamp")} | {
        "rating": float(obj["rating"])}


def meta_row(obj: dict) -> dict | tuple[str, str]:
    parts = obj["description"]
    if not all(isinstance(p, str) for p in parts):
        return "wrong_type", "description: expected a list of strings"
    if parts and parts[0].strip() == "Product Description":  # DPL drops this leading header entry
        parts = parts[1:]
    return {"parent_asin": obj["parent_asin"], "title": obj["title"], "description": " ".join(parts).strip(),
            "n_categories": len(obj["categories"]), "rating_number": obj["rating_number"]}


def load_raw(files: list[tuple[str, str, Path]], out: Path, rejects: RejectLog, batch_rows: int = 50_000) -> dict:
    """Validate (category, kind, path) raw files into `out/reviews.parquet` and `out/meta.parquet`.

    Returns `{"files": [paths by file_id], "rows": {"review": n, "meta": n}, "lines": n}`.
    """
    sinks = {"review": ParquetSink(out / "reviews.parquet", REVIEW_SCHEMA, batch_rows),
             "meta": ParquetSink(out / "meta.parquet", META_SCHEMA, batch_rows)}
    lines = 0
    try:
        for file_id, (category, kind, path) in enumerate(files):
            fields = REVIEW_FIELDS if kind == "review" else META_FIELDS
            for number, obj in iter_json_lines(path, rejects):
                lines += 1
                if obj is None:
                    continue
                problem = check_fields(obj, fields)
                row = meta_row(obj) if problem is None and kind == "meta" else None
                if isinstance(row, tuple):
                    problem = row
                if problem is not None:
                    rejects.add(path, number, problem[0], problem[1])
                    continue
                row = row if kind == "meta" else review_row(obj)
                sinks[kind].append({"file_id": file_id, "line": number, "category": category, **row})
    finally:
        for sink in sinks.values():
            sink.close()
    return {"files": [str(p) for _, _, p in files], "rows": {k: s.rows for k, s in sinks.items()}, "lines": lines}
