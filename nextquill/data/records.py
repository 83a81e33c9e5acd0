"""Reading raw files record by record, so that one bad record costs that record and nothing else.

JSONL files (plain or gzip) are streamed line by line and each line is decoded on its own; JSON-list
files are split into their elements by a bracket scanner when the whole file does not decode, so a
bad element is isolated too; Parquet files are read batch by batch, row by row where a batch fails.
Positions are 1-based lines in JSONL files and 0-based record indexes in JSON-list and Parquet files
(the reject's detail says which).

Every decoding failure of one record (bad UTF-8, bad JSON, NaN, nesting too deep, a duplicate key,
an integer too long to parse) becomes a reject with a reason from `validate.REASONS`. A stream cut
short (a truncated `.gz`, a JSON list without its end) keeps the complete records before the cut
and logs the cut as one `truncated_file` reject. A file that cannot be read at all raises
`FileError`, whose message names the file, the position and what is wrong.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from nextquill.data.schema import Ledger
from nextquill.data.validate import Invalid

UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}
# JSON strings (with escapes), a lone quote (an unterminated string), and the structural characters.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|"|[\[\]{},:]', re.DOTALL)
_CHUNK = 1 << 20
_GZIP_CHUNK = 1 << 16


class FileError(ValueError):
    """A whole file is unusable: the message names the file, the position and the problem."""


class _Constant(ValueError):
    pass


class _DuplicateKey(ValueError):
    pass


def _refuse_constant(name: str):
    raise _Constant(name)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _DuplicateKey(repeated)
    return obj


def decode(raw: bytes) -> object:
    """One JSON value from bytes, or `Invalid` with the reason it cannot be used."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Invalid("invalid_utf8", f"byte {err.start}: {err.reason}") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except _Constant as err:
        raise Invalid("not_finite", f"{err} is not a JSON number") from None
    except _DuplicateKey as err:
        raise Invalid("duplicate_key", f"key {str(err)[:60]!r} appears twice in one object") from None
    except RecursionError:
        raise Invalid("too_deep", "nested deeper than the JSON decoder's recursion limit") from None
    except json.JSONDecodeError as err:
        raise Invalid("malformed_json", str(err)) from None
    except ValueError as err:  # e.g. an integer longer than Python's 4,300-digit conversion limit
        raise Invalid("out_of_range", str(err)[:200]) from None


def find_file(folder: Path, stem: str, suffixes: Iterable[str]) -> Path | None:
    """The first `folder/stem+suffix` that exists, in the order of `suffixes`."""
    for suffix in suffixes:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def is_jsonl(path: Path) -> bool:
    return path.name.endswith((".jsonl", ".jsonl.gz"))


def reject(ledger: Ledger, path: Path, number: int, reason: str, detail: str = "") -> None:
    """Log one unusable record; for list files the detail says the position is a 0-based index."""
    if not is_jsonl(path):
        detail = f"record index {number} (0-based): {detail}"
    ledger.reject(path, number, reason, detail)


def _check_encoding(path: Path, head: bytes) -> None:
    for bom, name in _OTHER_BOMS.items():
        if head.startswith(bom):
            raise FileError(f"{path}: byte 0: the file is {name}; convert it to UTF-8")


# ---------------------------------------------------------------- JSONL

class _Truncated(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _gzip_chunks(path: Path) -> Iterator[bytes]:
    """Decompressed data of every gzip member; `_Truncated` when the last member ends early."""
    with path.open("rb") as handle:
        inflater, fed, offset = zlib.decompressobj(wbits=31), False, 0
        while True:
            chunk = handle.read(_GZIP_CHUNK)  # small reads, so an error's position is known to within one
            if not chunk:
                break
            while chunk:
                try:
                    yield inflater.decompress(chunk)
                except zlib.error as err:
                    raise FileError(f"{path}: corrupt gzip data in compressed bytes {offset:,}-"
                                    f"{offset + len(chunk):,}: {err}") from None
                offset += len(chunk) - len(inflater.unused_data)
                fed = True
                chunk = inflater.unused_data.lstrip(b"\x00") if inflater.eof else b""
                if inflater.eof:  # another member may follow (concatenated gzip files are one stream)
                    inflater, fed = zlib.decompressobj(wbits=31), False
        if fed and not inflater.eof:
            raise _Truncated(f"the gzip stream ends early after {offset:,} compressed bytes")


def _plain_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _lines(path: Path) -> Iterator[bytes]:
    """Complete lines of a .jsonl or .jsonl.gz file, without their newline."""
    chunks = _gzip_chunks(path) if path.suffix == ".gz" else _plain_chunks(path)
    pending = b""
    try:
        for chunk in chunks:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            yield from complete
    except _Truncated as cut:
        lost = f"; an incomplete last line of {len(pending):,} bytes is lost" if pending else ""
        raise _Truncated(cut.message + lost) from None
    if pending:
        yield pending  # a plain file's last line needs no newline


def _jsonl_items(path: Path, ledger: Ledger) -> Iterator[tuple[int, object]]:
    number = 0
    try:
        for number, raw in enumerate(_lines(path), start=1):
            ledger.read(path)
            if number == 1:
                _check_encoding(path, raw)
                raw = raw.removeprefix(UTF8_BOM)  # a BOM marks the encoding; it is not part of the record
            if not raw.strip():
                reject(ledger, path, number, "empty_line")
                continue
            try:
                yield number, decode(raw)
            except Invalid as err:
                reject(ledger, path, number, err.reason, err.detail)
    except _Truncated as cut:
        ledger.read(path)  # the cut counts as one record: what it held is unknown
        reject(ledger, path, number + 1, "truncated_file", f"{cut.message}; lines 1-{number} are kept")


# ---------------------------------------------------------------- JSON lists and objects

class _Mismatch(Exception):
    def __init__(self, offset: int, found: bytes):
        super().__init__(offset, found)
        self.offset, self.found = offset, found


_CLOSERS = {b"[": b"]", b"{": b"}"}


def _scan(data: bytes, start: int) -> tuple[list[tuple[int, int]], int | None]:
    """Spans of the elements (or `key: value` members) of the container opened at `data[start]`.

    Returns `(spans, end)` where `end` is the offset after the closing bracket, or None when the
    data ends first (the last span is then the incomplete element). Only brackets outside strings
    count, so an element's content never moves the boundaries of the others; a closing bracket that
    does not match its opener raises `_Mismatch` (the framing of the elements after it is lost).
    """
    spans, stack, begin = [], [data[start:start + 1]], start + 1
    for match in _TOKENS.finditer(data, start + 1):
        token = match.group()
        if token[:1] == b'"':
            if len(token) == 1:  # a quote that never closes: the data ends inside a string
                break
            continue
        if token in _CLOSERS:
            stack.append(token)
        elif token in (b"]", b"}"):
            if _CLOSERS[stack.pop()] != token:
                raise _Mismatch(match.start(), token)
            if not stack:
                if data[begin:match.start()].strip() or spans:
                    spans.append((begin, match.start()))
                return spans, match.end()
        elif token == b"," and len(stack) == 1:
            spans.append((begin, match.start()))
            begin = match.end()
    if data[begin:].strip():
        spans.append((begin, len(data)))
    return spans, None


def _scan_or_fail(path: Path, data: bytes, start: int) -> tuple[list[tuple[int, int]], int | None]:
    try:
        return _scan(data, start)
    except _Mismatch as err:
        raise FileError(f"{path}: byte {err.offset:,}: {err.found.decode()} does not close the bracket it "
                        "should; the JSON structure is broken from here") from None


def _first_char(data: bytes, path: Path) -> int:
    _check_encoding(path, data)
    offset = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    while offset < len(data) and data[offset:offset + 1].isspace():
        offset += 1
    return offset


def _list_items(path: Path, data: bytes, start: int, ledger: Ledger) -> Iterator[tuple[int, object]]:
    """(index, value) of the elements of the JSON list at `data[start]`, each decoded on its own."""
    spans, end = _scan_or_fail(path, data, start)
    complete = spans if end is not None else spans[:-1]
    for index, (lo, hi) in enumerate(complete):
        ledger.read(path)
        try:
            yield index, decode(data[lo:hi])
        except Invalid as err:
            reject(ledger, path, index, err.reason, err.detail)
    if end is None:
        ledger.read(path)
        reject(ledger, path, len(complete), "truncated_file",
               f"the JSON list ends at byte {len(data):,} without its closing ]; the {len(complete)} records "
               "before the cut are kept")
    elif data[end:].strip():
        raise FileError(f"{path}: byte {end:,}: unexpected data after the end of the JSON list")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise FileError(f"{path}: cannot be read ({err.strerror})") from None


def _json_list_items(path: Path, ledger: Ledger) -> Iterator[tuple[int, object]]:
    data = _read_bytes(path)
    start = _first_char(data, path)
    opening = data[start:start + 1]
    if opening != b"[":
        found = {b"{": "an object", b"": "empty"}.get(opening, f"{opening!r}")
        raise FileError(f"{path}: byte {start}: top level is {found}, expected a JSON list [...]")
    yield from _list_items(path, data, start, ledger)


def load_object(path: Path, list_key: str, ledger: Ledger) -> tuple[dict, Iterator[tuple[int, object]] | None]:
    """A JSON object file: its members but `list_key` decoded, and the elements of `list_key` one by one
    (None when `list_key` is absent or not a list).

    Used for LaMP's `{"task": ..., "golds": [...]}` files: a bad gold costs that gold only.
    """
    data = _read_bytes(path)
    start = _first_char(data, path)
    if data[start:start + 1] != b"{":
        raise FileError(f"{path}: byte {start}: top level is not a JSON object {{...}}")
    members, end = _scan_or_fail(path, data, start)
    if end is None:
        raise FileError(f"{path}: the JSON object ends at byte {len(data):,} without its closing }}")
    head: dict = {}
    items: Iterator[tuple[int, object]] | None = None
    for lo, hi in members:
        colon = next((m for m in _TOKENS.finditer(data, lo, hi) if m.group() == b":"), None)
        if colon is None:
            raise FileError(f"{path}: byte {lo:,}: an object member without a colon")
        try:
            key = decode(data[lo:colon.start()])
        except Invalid as err:
            raise FileError(f"{path}: byte {lo:,}: bad object key ({err.detail})") from None
        value = data[colon.end():hi]
        value_at = hi - len(value.lstrip())  # where the value starts, past the whitespace after the colon
        if key == list_key and data[value_at:value_at + 1] == b"[":
            items = _list_items(path, data[:hi], value_at, ledger)
            continue
        try:
            head[key] = decode(data[colon.end():hi])
        except Invalid as err:
            raise FileError(f"{path}: byte {colon.end():,}: bad value of {key!r} ({err.detail})") from None
    return head, items


# ---------------------------------------------------------------- Parquet

def _parquet_items(path: Path, ledger: Ledger) -> Iterator[tuple[int, object]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches()
    except (pa.ArrowException, OSError) as err:
        raise FileError(f"{path}: not a readable Parquet file ({err})") from None
    index = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as err:
            raise FileError(f"{path}: record index {index} (0-based): a row group cannot be read ({err})") from None
        try:
            rows: list = batch.to_pylist()
        except (UnicodeDecodeError, pa.ArrowException, ValueError, OverflowError):
            rows = [_parquet_row(batch, i) for i in range(batch.num_rows)]  # isolate the rows that fail
        for row in rows:
            ledger.read(path)
            if isinstance(row, Invalid):
                reject(ledger, path, index, row.reason, row.detail)
            else:
                yield index, row
            index += 1


def _parquet_row(batch, i: int) -> object:
    try:
        return batch.slice(i, 1).to_pylist()[0]
    except UnicodeDecodeError as err:
        return Invalid("invalid_utf8", f"byte {err.start}: {err.reason}")
    except (ValueError, OverflowError) as err:
        return Invalid("wrong_type", f"a value cannot be read: {err}")


# ---------------------------------------------------------------- any file

def iter_records(path: Path, ledger: Ledger) -> Iterator[tuple[int, dict]]:
    """(position, record) for every decodable object in a .jsonl(.gz), .json list or .parquet file.

    Each record is counted as read in `ledger`; what is not yielded is rejected there.
    """
    if is_jsonl(path):
        items: Iterable[tuple[int, object]] = _jsonl_items(path, ledger)
    elif path.suffix == ".parquet":
        items = _parquet_items(path, ledger)
    elif path.suffix == ".json":
        items = _json_list_items(path, ledger)
    else:
        raise FileError(f"{path}: unsupported file type (expected .jsonl, .jsonl.gz, .json or .parquet)")
    for number, obj in items:
        if isinstance(obj, dict):
            yield number, obj
        else:
            reject(ledger, path, number, "wrong_type", f"record is a {type(obj).__name__}, expected an object")
