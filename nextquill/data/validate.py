"""The one validation layer of every reader: field types, ranges and content, and text cleaning.

Readers (`amazon2023`, `dpl`, `lamp`, `longlamp`) describe each record as a `Spec`, a mapping of field
name to `Kind`, and call `check`, which returns the record's fields cleaned or raises `Invalid` with a
reason from the closed list `REASONS` and a detail naming the field and what was expected. Nothing
invalid passes: numbers are finite and in range, ids are non-empty and free of control characters,
text keeps at least one visible character once control and zero-width characters are removed (and
kept text has them removed), timestamps fall in a plausible range, and a record's text is capped.
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cached_property, lru_cache

# The closed list of reasons a record is rejected (data/README.md has an example of each). `Ledger`
# refuses any other reason, so a new failure mode cannot slip in without being documented here.
REASONS: dict[str, str] = {
    "empty_line": "a JSONL line with nothing but whitespace",
    "invalid_utf8": "bytes that are not UTF-8",
    "malformed_json": "a line or list element that is not JSON",
    "not_finite": "NaN or Infinity, which JSON does not allow, or a number that overflows to infinity",
    "too_deep": "JSON nested deeper than the decoder's recursion limit",
    "duplicate_key": "one key twice in one object: which value is meant is ambiguous",
    "invalid_unicode": "a lone UTF-16 surrogate in a string (it cannot be written as UTF-8)",
    "wrong_type": "a record or field of the wrong JSON type",
    "missing_field": "a required field absent or null",
    "out_of_range": "a number outside its range: a rating outside data.rating_range, a count below 0, "
                    "an integer beyond 64 bits",
    "bad_timestamp": "a timestamp outside data.timestamp_years",
    "bad_id": "an id that is empty or holds control or zero-width characters",
    "no_real_text": "a text field with no visible character left once control and zero-width characters go",
    "empty_text": "a text field that the format requires, empty or whitespace",
    "too_large": "a record whose text exceeds data.max_record_chars",
    "duplicate": "a record that repeats an earlier one (same id, or same user, item and text)",
    "unknown_item": "a target whose item is not in the metadata",
    "no_gold": "a LaMP question without a usable gold output",
    "truncated_file": "a compressed stream or JSON list cut short: the records after the cut are lost",
    "write_failed": "a record that validated but could not be written to Parquet",
}


class Invalid(ValueError):
    """One record is unusable: `reason` (a key of REASONS) and a detail naming the field."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class Kind(Enum):
    TEXT = "text"  # multi-line text: cleaned; may be empty (the reader decides what empty means)
    LINE = "line"  # one-line text (titles): cleaned, line breaks become spaces
    ID = "id"  # a string (or, where `ID_OR_INT`, an integer) with visible characters and no control ones
    ID_OR_INT = "id_or_int"
    RATING = "rating"  # a finite number inside data.rating_range
    SCORE = "score"  # a rating that may also come as text ("5"), as LaMP and LongLaMP publish them
    TIMESTAMP_MS = "timestamp_ms"  # integer Unix milliseconds inside data.timestamp_years
    COUNT = "count"  # an integer >= 0 and inside int64, or null
    LIST = "list"
    OBJECT = "object"


Spec = Mapping[str, Kind]
INT64 = (-(2**63), 2**63 - 1)
TEXT_KINDS = (Kind.TEXT, Kind.LINE)


@dataclass(frozen=True)
class Limits:
    """The ranges `check` enforces; built from `DataConfig` by the prepare stage."""

    rating_range: tuple[float, float]
    timestamp_years: tuple[int, int]
    max_record_chars: int

    @classmethod
    def from_config(cls, cfg) -> Limits:
        return cls(tuple(cfg.rating_range), tuple(cfg.timestamp_years), cfg.max_record_chars)

    @cached_property  # read for every record: computed once per Limits
    def timestamp_ms_range(self) -> tuple[int, int]:
        import datetime as dt

        lo, hi = self.timestamp_years
        start = dt.datetime(lo, 1, 1, tzinfo=dt.UTC)
        end = dt.datetime(hi + 1, 1, 1, tzinfo=dt.UTC)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1


# ---------------------------------------------------------------- text cleaning

# Characters mapped one to one (so character offsets of the rest do not move): tabs and other
# whitespace controls become a space, Unicode line and paragraph separators and NEL a newline.
_SPACE = {"\t", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x1f"}
_NEWLINE = {"\x85", "\u2028", "\u2029"}


@lru_cache(maxsize=1)
def _tables() -> tuple[re.Pattern, frozenset[str]]:
    """(a pattern that finds any character cleaning touches, the set of characters it deletes)."""
    deleted = set()
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        if unicodedata.category(char) in ("Cc", "Cf") and char != "\n" and char not in _SPACE | _NEWLINE:
            deleted.add(char)
    codes = sorted(ord(c) for c in deleted | _SPACE | _NEWLINE | {"\r"})
    runs: list[list[int]] = []  # contiguous code points as ranges: a short class is a fast class
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    ranges = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in runs)
    return re.compile(f"[{ranges}\ud800-\udfff]"), frozenset(deleted)


def clean_text(value: str, name: str, *, one_line: bool = False) -> tuple[str, list[int] | None]:
    """`value` without control and zero-width characters, and where each kept character came from.

    CRLF and lone CR become LF, tabs a space; with `one_line`, line breaks become spaces. Returns
    `(cleaned, origin)` where `origin[i]` is the index in `value` of `cleaned[i]`, or `(value, None)`
    when nothing changed. Raises `Invalid("invalid_unicode")` on a lone surrogate.
    """
    if value.isprintable():  # C-fast: no control, format, separator or surrogate character at all (most text)
        return value, None
    pattern, deleted = _tables()
    if not pattern.search(value) and not (one_line and "\n" in value):
        return value, None
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(value):
        if "\ud800" <= char <= "\udfff":
            raise Invalid("invalid_unicode", f"{name}: lone surrogate U+{ord(char):04X} at character {index}")
        if char in deleted or (char == "\r" and value[index + 1: index + 2] == "\n"):
            continue
        if char in _SPACE:
            char = " "
        elif char in _NEWLINE or char == "\r":
            char = "\n"
        if one_line and char == "\n":
            char = " "
        out.append(char)
        origin.append(index)
    return "".join(out), origin


def has_visible(text: str) -> bool:
    """True when `text` holds a character that is not whitespace, a control, a separator or a lone mark."""
    return any(not char.isspace() and unicodedata.category(char)[0] not in "CZM" for char in text)


def remap_spans(spans: tuple[tuple[int, int], ...], origin: list[int]) -> tuple[tuple[int, int], ...]:
    """Character spans of the raw text moved onto the cleaned text (`origin` from `clean_text`)."""
    moved = ((bisect.bisect_left(origin, start), bisect.bisect_left(origin, end)) for start, end in spans)
    return tuple((start, end) for start, end in moved if start < end)


# ---------------------------------------------------------------- field checks

def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: object, name: str, text_ok: bool) -> float | int:
    """A finite int or float (bools are not numbers here); with `text_ok`, numeric strings are read as floats."""
    if isinstance(value, str) and text_ok:
        try:
            value = float(value.strip())
        except ValueError:
            raise Invalid("wrong_type", f"{name}: expected a number, got string {_show(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("wrong_type", f"{name}: expected a number, got {_type_name(value)} {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise Invalid("not_finite", f"{name}: expected a finite number, got {value}")
    return value


def _integer(value: object, name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("wrong_type", f"{name}: expected {what}, got {_type_name(value)} {_show(value)}")
    if not INT64[0] <= value <= INT64[1]:
        raise Invalid("out_of_range", f"{name}: {len(str(abs(value)))}-digit integer does not fit 64 bits")
    return value


def _text(value: object, name: str, one_line: bool) -> tuple[str, list[int] | None]:
    if not isinstance(value, str):
        raise Invalid("wrong_type", f"{name}: expected a string, got {_type_name(value)} {_show(value)}")
    cleaned, origin = clean_text(value, name, one_line=one_line)
    if value.strip() and not has_visible(cleaned):
        raise Invalid("no_real_text", f"{name}: {len(value)} characters, none visible once control and "
                                      "zero-width characters are removed")
    return cleaned, origin


def _id(value: object, name: str, allow_int: bool) -> str:
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(_integer(value, name, "an id"))
    if not isinstance(value, str):
        expected = "a string or integer id" if allow_int else "a string id"
        raise Invalid("wrong_type", f"{name}: expected {expected}, got {_type_name(value)} {_show(value)}")
    if not has_visible(value):
        raise Invalid("bad_id", f"{name}: empty or whitespace")
    if clean_text(value, name, one_line=True)[1] is not None:  # cleaning could merge two different ids
        raise Invalid("bad_id", f"{name}: holds control or zero-width characters: {_show(value)}")
    return value


def check_value(value: object, kind: Kind, name: str, limits: Limits) -> object:
    """One field's cleaned value, or `Invalid`. Text kinds return `(text, origin)` (see `clean_text`)."""
    if kind in TEXT_KINDS:
        return _text(value, name, kind is Kind.LINE)
    if kind in (Kind.ID, Kind.ID_OR_INT):
        return _id(value, name, kind is Kind.ID_OR_INT)
    if kind in (Kind.RATING, Kind.SCORE):
        rating = float(_number(value, name, kind is Kind.SCORE))
        lo, hi = limits.rating_range
        if not lo <= rating <= hi:
            raise Invalid("out_of_range", f"{name}: rating {rating} is outside data.rating_range [{lo}, {hi}]")
        return rating
    if kind is Kind.TIMESTAMP_MS:
        stamp = _integer(value, name, "integer Unix milliseconds")
        lo, hi = limits.timestamp_ms_range
        if not lo <= stamp <= hi:
            years = limits.timestamp_years
            raise Invalid("bad_timestamp", f"{name}: {stamp} ms is outside the years {years[0]}-{years[1]} "
                                           "(data.timestamp_years)")
        return stamp
    if kind is Kind.COUNT:
        if value is None:
            return None
        count = _integer(value, name, "a non-negative integer or null")
        if count < 0:
            raise Invalid("out_of_range", f"{name}: expected a count >= 0, got {count}")
        return count
    expected = list if kind is Kind.LIST else dict
    if not isinstance(value, expected):
        noun = "a list" if kind is Kind.LIST else "an object"
        raise Invalid("wrong_type", f"{name}: expected {noun}, got {_type_name(value)} {_show(value)}")
    return value


@dataclass
class Checked:
    """A record's checked fields: `values[name]` (text cleaned), and the raw-offset maps of cleaned text."""

    values: dict
    origins: dict[str, list[int]]
    chars: int  # characters of text in the record, for the size cap

    def __getitem__(self, name: str):
        return self.values[name]


def check(obj: dict, spec: Spec, limits: Limits, prefix: str = "", optional: frozenset[str] = frozenset()
          ) -> Checked:
    """Every field of `spec` checked and cleaned; fields in `optional` may be absent or null."""
    values, origins, chars = {}, {}, 0
    for name, kind in spec.items():
        value = obj.get(name)
        if value is None and (name in optional or kind is Kind.COUNT):
            values[name] = None
            continue
        if value is None:
            raise Invalid("missing_field", f"{prefix}{name}")
        checked = check_value(value, kind, f"{prefix}{name}", limits)
        if kind in TEXT_KINDS:
            checked, origin = checked
            chars += len(checked)
            if origin is not None:
                origins[name] = origin
        values[name] = checked
    return Checked(values, origins, chars)


def check_size(chars: int, limits: Limits, what: str = "record") -> None:
    if chars > limits.max_record_chars:
        raise Invalid("too_large", f"{what} holds {chars:,} characters of text, more than data.max_record_chars "
                                   f"= {limits.max_record_chars:,}")


def check_entries(entries: list, spec: Spec, limits: Limits, name: str) -> tuple[list[Checked], int]:
    """Every object of a list field such as `profile` checked, each under the size cap; returns them and
    their total text size (a history entry is a record of its own for the cap)."""
    out, chars = [], 0
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise Invalid("wrong_type", f"{name}[{index}]: expected an object, got {_type_name(entry)}")
        checked = check(entry, spec, limits, f"{name}[{index}].")
        check_size(checked.chars, limits, f"{name}[{index}]")
        out.append(checked)
        chars += checked.chars
    return out, chars


def require_text(text: str, name: str) -> None:
    """Formats whose target or input must not be empty (DPL, LaMP, LongLaMP) call this after `check`."""
    if not text.strip():
        raise Invalid("empty_text", f"{name} is empty or whitespace")
