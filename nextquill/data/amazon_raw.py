"""Stream raw Amazon Reviews 2023 files into typed Parquet, rejecting bad records with file and line.

The raw Books file holds about 29 million reviews, so nothing here holds a file as Python objects:
lines are parsed one at a time, checked, and appended to column buffers that are flushed to Parquet
every `batch_rows` rows. Each kept row carries its file id and 1-based line number, so any later
filter can still say exactly which input line it dropped.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from nextquill.data.records import find_file, iter_records, reject
from nextquill.data.schema import Ledger
from nextquill.data.validate import Invalid, Kind, Limits, Spec, check, check_size, check_value
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
REVIEW_FIELDS: Spec = {"user_id": Kind.ID, "parent_asin": Kind.ID, "rating": Kind.RATING, "title": Kind.LINE,
                       "text": Kind.TEXT, "timestamp": Kind.TIMESTAMP_MS}
# rating_number may be null: the DPL meta filter drops such items, which is filtering, not bad input.
META_FIELDS: Spec = {"parent_asin": Kind.ID, "title": Kind.LINE, "description": Kind.LIST, "categories": Kind.LIST,
                     "rating_number": Kind.COUNT}


def raw_file(folder: Path, stem: str) -> Path:
    """`stem.jsonl` or `stem.jsonl.gz`, whichever exists (error naming both when neither does)."""
    path = find_file(folder, stem, (".jsonl", ".jsonl.gz"))
    if path is None:
        raise FileNotFoundError(f"{folder / stem}.jsonl(.gz): raw file not found")
    return path


def review_row(obj: dict, limits: Limits) -> tuple[dict, list[int] | None]:
    """The checked review's columns, and where its cleaned text's characters came from (None: unchanged)."""
    checked = check(obj, REVIEW_FIELDS, limits)
    check_size(checked.chars, limits, "review")
    return {k: checked[k] for k in REVIEW_FIELDS}, checked.origins.get("text")


def meta_row(obj: dict, limits: Limits) -> dict:
    checked = check(obj, META_FIELDS, limits)
    parts = [check_value(p, Kind.TEXT, f"description[{i}]", limits)[0] for i, p in enumerate(checked["description"])]
    if parts and parts[0].strip() == "Product Description":  # DPL drops this leading header entry
        parts = parts[1:]
    description = " ".join(parts).strip()
    check_size(checked.chars + len(description), limits, "item metadata")
    return {"parent_asin": checked["parent_asin"], "title": checked["title"], "description": description,
            "n_categories": len(checked["categories"]), "rating_number": checked["rating_number"]}


def load_raw(files: list[tuple[str, str, Path]], out: Path, ledger: Ledger, limits: Limits, keep_origins: bool,
             batch_rows: int = 50_000) -> dict:
    """Validate (category, kind, path) raw files into `out/reviews.parquet` and `out/meta.parquet`.

    Returns `{"files": [paths by file_id], "rows": {"review": n, "meta": n}, "origins": {...}}`, where
    `origins` maps (user_id, parent_asin, timestamp) of each review whose text cleaning changed to the
    raw offset of every kept character (only with `keep_origins`: the synthetic truth spans need it).
    """
    def write_failed(row: dict, err: Exception) -> None:
        path = files[row["file_id"]][2]
        reject(ledger, path, row["line"], "write_failed", f"{type(err).__name__}: {err}")

    sinks = {"review": ParquetSink(out / "reviews.parquet", REVIEW_SCHEMA, batch_rows, write_failed),
             "meta": ParquetSink(out / "meta.parquet", META_SCHEMA, batch_rows, write_failed)}
    origins: dict[tuple, list[int]] = {}
    try:
        for file_id, (category, kind, path) in enumerate(files):
            for number, obj in iter_records(path, ledger):
                try:
                    if kind == "meta":
                        row = meta_row(obj, limits)
                    else:
                        row, origin = review_row(obj, limits)
                        if origin is not None and keep_origins:
                            origins[(row["user_id"], row["parent_asin"], row["timestamp"])] = origin
                except Invalid as err:
                    reject(ledger, path, number, err.reason, err.detail)
                    continue
                sinks[kind].append({"file_id": file_id, "line": number, "category": category, **row})
    finally:
        for sink in sinks.values():
            sink.close()
    return {"files": [str(p) for _, _, p in files], "rows": {kind: sink.rows for kind, sink in sinks.items()},
            "origins": origins}
