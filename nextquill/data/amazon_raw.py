"""Stream raw Amazon Reviews 2023 files into typed Parquet, rejecting bad records with file and line.

The raw Books file holds about 29 million reviews, so nothing here holds a file as Python objects:
lines are parsed one at a time, checked, and appended to column buffers that are flushed to Parquet
every `batch_rows` rows. Each kept row carries its file id and 1-based line number, so any later
filter can still say exactly which input line it dropped.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from nextquill.data.records import NUMBER, TEXT, Spec, check_fields, find_file, iter_records
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
REVIEW_FIELDS: Spec = {"user_id": TEXT, "parent_asin": TEXT, "rating": NUMBER, "title": TEXT, "text": TEXT,
                       "timestamp": (int,)}
# rating_number may be null: the DPL meta filter drops such items, which is filtering, not bad input.
META_FIELDS: Spec = {"parent_asin": TEXT, "title": TEXT, "description": (list,), "categories": (list,)}


def raw_file(folder: Path, stem: str) -> Path:
    """`stem.jsonl` or `stem.jsonl.gz`, whichever exists (error naming both when neither does)."""
    path = find_file(folder, stem, (".jsonl", ".jsonl.gz"))
    if path is None:
        raise FileNotFoundError(f"{folder / stem}.jsonl(.gz): raw file not found")
    return path


def review_row(obj: dict) -> dict:
    return {k: obj[k] for k in ("user_id", "parent_asin", "title", "text", "timestamp")} | {
        "rating": float(obj["rating"])}


def meta_row(obj: dict) -> dict | tuple[str, str]:
    parts, rating_number = obj["description"], obj.get("rating_number")
    if not all(isinstance(p, str) for p in parts):
        return "wrong_type", "description: expected a list of strings"
    if rating_number is not None and (isinstance(rating_number, bool) or not isinstance(rating_number, int)):
        return "wrong_type", f"rating_number: expected int or null, got {type(rating_number).__name__}"
    if parts and parts[0].strip() == "Product Description":  # DPL drops this leading header entry
        parts = parts[1:]
    return {"parent_asin": obj["parent_asin"], "title": obj["title"], "description": " ".join(parts).strip(),
            "n_categories": len(obj["categories"]), "rating_number": rating_number}


def load_raw(files: list[tuple[str, str, Path]], out: Path, rejects: RejectLog, batch_rows: int = 50_000) -> dict:
    """Validate (category, kind, path) raw files into `out/reviews.parquet` and `out/meta.parquet`.

    Returns `{"files": [paths by file_id], "rows": {"review": n, "meta": n}, "lines": n}`.
    """
    sinks = {"review": ParquetSink(out / "reviews.parquet", REVIEW_SCHEMA, batch_rows),
             "meta": ParquetSink(out / "meta.parquet", META_SCHEMA, batch_rows)}
    try:
        for file_id, (category, kind, path) in enumerate(files):
            fields = REVIEW_FIELDS if kind == "review" else META_FIELDS
            for number, obj in iter_records(path, rejects):
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
    rows = {kind: sink.rows for kind, sink in sinks.items()}
    # Every line is either a row or a reject (loading runs first, so the log holds only its rejects).
    return {"files": [str(p) for _, _, p in files], "rows": rows, "lines": sum(rows.values()) + rejects.total}
