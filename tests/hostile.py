"""Hostile input records, by class, for the property tests and for a dirty copy of the embedded benchmark.

Every class turns a valid Amazon Reviews 2023 review into raw bytes of one JSONL line that must be
rejected with a known reason (or, for `CLEANED`, kept with its control characters removed). The same
classes, with random parameters, drive the Hypothesis strategies of `tests/unit/test_hostile_input.py`.

    python tests/hostile.py data/raw/synthetic data/raw/dirty    # a dirty copy: every class injected

writes the copy and prints what it injected, for `prepare` to be run on it.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

Record = dict
Line = bytes

CONTROL = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x9f"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e"


def dumps(obj: object) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()  # ensure_ascii: a lone surrogate is written as \ud800


def _with(record: Record, **fields) -> Line:
    return dumps({**record, **fields})


def _raw_field(record: Record, field: str, raw: bytes) -> Line:
    """The record with `field`'s value replaced by raw JSON text (for values json.dumps will not write)."""
    return dumps({**record, field: "@@RAW@@"}).replace(b'"@@RAW@@"', raw)


# class -> (make the hostile line from a valid review, the reject reason it must get)
REJECTED: dict[str, tuple[Callable[[Record], Line], str]] = {
    "deep_nesting": (lambda r: _raw_field(r, "images", b"[" * 100_000 + b"]" * 100_000), "too_deep"),
    "lone_surrogate": (lambda r: _with(r, text=r["text"] + "\ud800"), "invalid_unicode"),
    "int_beyond_64_bits": (lambda r: _with(r, timestamp=2**70), "out_of_range"),
    "int_of_5000_digits": (lambda r: _raw_field(r, "timestamp", b"9" * 5000), "out_of_range"),
    "rating_nan": (lambda r: _raw_field(r, "rating", b"NaN"), "not_finite"),
    "rating_infinity": (lambda r: _raw_field(r, "rating", b"-Infinity"), "not_finite"),
    "rating_overflow": (lambda r: _raw_field(r, "rating", b"1e400"), "not_finite"),
    "rating_negative": (lambda r: _with(r, rating=-1.0), "out_of_range"),
    "rating_seven": (lambda r: _with(r, rating=7), "out_of_range"),
    "rating_bool": (lambda r: _with(r, rating=True), "wrong_type"),
    "rating_string": (lambda r: _with(r, rating="5"), "wrong_type"),
    "text_nul": (lambda r: _with(r, text="\x00" * 300), "no_real_text"),
    "text_control": (lambda r: _with(r, text=CONTROL * 40), "no_real_text"),
    "text_zero_width": (lambda r: _with(r, text=ZERO_WIDTH * 40), "no_real_text"),
    "title_control": (lambda r: _with(r, title=CONTROL * 3), "no_real_text"),
    "timestamp_negative": (lambda r: _with(r, timestamp=-86_400_000), "bad_timestamp"),
    "timestamp_absurd": (lambda r: _with(r, timestamp=32_503_680_000_000), "bad_timestamp"),  # year 3000
    "timestamp_seconds": (lambda r: _with(r, timestamp=r["timestamp"] // 1000), "bad_timestamp"),
    "timestamp_float": (lambda r: _with(r, timestamp=float(r["timestamp"])), "wrong_type"),
    "review_2mb": (lambda r: _with(r, text="word " * 400_000), "too_large"),
    "duplicate_key": (lambda r: dumps(r)[:-1] + b', "rating": 1.0}', "duplicate_key"),
    "latin1_bytes": (lambda r: dumps(r).replace(b'"title": "', b'"title": "caf\xe9 '), "invalid_utf8"),
    "user_id_empty": (lambda r: _with(r, user_id=""), "bad_id"),
    "user_id_whitespace": (lambda r: _with(r, user_id="  \t"), "bad_id"),
    "user_id_control": (lambda r: _with(r, user_id=r["user_id"] + "\x00"), "bad_id"),
    "user_id_number": (lambda r: _with(r, user_id=12345), "wrong_type"),
    "parent_asin_list": (lambda r: _with(r, parent_asin=[r["parent_asin"]]), "wrong_type"),
    "text_object": (lambda r: _with(r, text={"body": r["text"]}), "wrong_type"),
    "title_missing": (lambda r: dumps({k: v for k, v in r.items() if k != "title"}), "missing_field"),
    "text_null": (lambda r: _with(r, text=None), "missing_field"),
    "not_an_object": (lambda r: dumps([r]), "wrong_type"),
    "malformed": (lambda r: dumps(r)[:-7], "malformed_json"),
    "empty_line": (lambda r: b"   ", "empty_line"),
}
# The same for item metadata lines.
META_REJECTED: dict[str, tuple[Callable[[Record], Line], str]] = {
    "meta_deep_nesting": (lambda r: _raw_field(r, "details", b'{"a":' * 50_000 + b"1" + b"}" * 50_000), "too_deep"),
    "meta_title_zero_width": (lambda r: _with(r, title=ZERO_WIDTH * 5), "no_real_text"),
    "meta_description_numbers": (lambda r: _with(r, description=[1, 2]), "wrong_type"),
    "meta_rating_number_huge": (lambda r: _with(r, rating_number=10**30), "out_of_range"),
    "meta_rating_number_negative": (lambda r: _with(r, rating_number=-3), "out_of_range"),
    "meta_surrogate_title": (lambda r: _with(r, title="\udfff" + r["title"]), "invalid_unicode"),
    "meta_duplicate_key": (lambda r: dumps(r)[:-1] + b', "title": "Other"}', "duplicate_key"),
}
# Classes that keep their record: the text loses its control and zero-width characters.
CLEANED: dict[str, Callable[[Record], Line]] = {
    "text_with_controls": lambda r: _with(r, text="\x00" + r["text"].replace(" ", " \u200b", 5) + "\x1b"),
    "text_with_crlf": lambda r: _with(r, text=r["text"].replace(". ", ".\r\n", 2)),
}


def _read_jsonl(path: Path) -> list[Record]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def dirty_copy(source: Path, target: Path, seed: int = 0) -> dict:
    """Copy a raw Amazon-format folder and inject every hostile class into each review file.

    Each class is applied to a new copy of a random valid review (so no valid review is lost), CRLF
    line endings and a BOM are added to the first review file, and a gzip copy cut short replaces
    the last review file. Returns what was injected per file.
    """
    rng = random.Random(seed)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    reviews = sorted((target / "review_categories").glob("*.jsonl*"))
    report: dict[str, dict] = {}
    for path in sorted((target / "meta_categories").glob("*.jsonl")):
        records = _read_jsonl(path)
        lines = [dumps(r) for r in records]
        for make, _ in META_REJECTED.values():
            lines.insert(rng.randrange(len(lines) + 1), make(dict(rng.choice(records))))
        path.write_bytes(b"\n".join(lines) + b"\n")
        report[str(path.relative_to(target))] = {name: reason for name, (_, reason) in META_REJECTED.items()}
    for index, path in enumerate(reviews):
        records = _read_jsonl(path)
        lines = [dumps(r) for r in records]
        injected = {}
        for name, make in CLEANED.items():  # changes a valid review in place: it must still be kept
            position = rng.randrange(len(records))
            lines[position] = make(records[position])
            injected[name] = "kept, cleaned"
        for name, (make, reason) in REJECTED.items():  # each on a new copy of a valid review
            lines.insert(rng.randrange(len(lines) + 1), make(dict(rng.choice(records))))
            injected[name] = reason
        newline = b"\r\n" if index == 0 else b"\n"
        data = (b"\xef\xbb\xbf" if index == 0 else b"") + newline.join(lines) + newline
        path.unlink()
        if index == len(reviews) - 1:  # the last file: gzip, cut short mid-stream
            path = path if path.suffix == ".gz" else path.with_name(path.name + ".gz")
            packed = gzip.compress(data)
            path.write_bytes(packed[: int(len(packed) * 0.9)])
            injected["truncated_gzip"] = "truncated_file"
        else:
            path.write_bytes(data)
        report[str(path.relative_to(target))] = injected
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tests/hostile.py SOURCE_RAW_DIR TARGET_RAW_DIR", file=sys.stderr)
        return 2
    report = dirty_copy(Path(argv[0]), Path(argv[1]))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
