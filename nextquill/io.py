"""Atomic file writes: a stage killed mid-write leaves the previous file or none, never a partial one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _usual_permissions(folder: Path) -> None:
    """mkdtemp and some writers create owner-only files; give the tree the permissions a plain write would."""
    mask = _umask()
    os.chmod(folder, 0o777 & ~mask)
    for base, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(base, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(base, name), 0o666 & ~mask)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a temporary file next to `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)
        handle.write("\n")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    """Write one JSON object per line; returns the number of rows."""
    n = 0
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False))
            handle.write("\n")
            n += 1
    return n


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a folder under a temporary name, then swap it in place of `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer that was killed (kill -9)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _usual_permissions(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class ParquetSink:
    """Rows buffered as columns and flushed to one Parquet file every `batch_rows` rows: memory stays flat.

    The file appears under its final name only when `close()` succeeds (written to a temporary first).
    A row that Arrow cannot convert (a value beyond the column's type, say) does not fail the batch:
    it is left out and handed to `on_error(row, error)`; without `on_error` the error is raised.
    """

    def __init__(self, path: str | Path, schema, batch_rows: int = 50_000, on_error=None):
        import pyarrow.parquet as pq

        self.path, self.schema, self.batch_rows, self.rows = Path(path), schema, batch_rows, 0
        self.on_error = on_error
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.columns: dict[str, list] = {name: [] for name in schema.names}
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")

    def append(self, row: dict) -> None:
        for name, column in self.columns.items():
            column.append(row[name])
        self.rows += 1
        if len(self.columns[self.schema.names[0]]) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if not self.columns[self.schema.names[0]]:
            return
        try:
            table = pa.table(self.columns, schema=self.schema)
        except (pa.ArrowException, UnicodeError, OverflowError, TypeError, ValueError):
            if self.on_error is None:
                raise
            table = pa.Table.from_pylist(self._convertible(), schema=self.schema)
        self.writer.write_table(table)
        self.columns = {name: [] for name in self.schema.names}

    def _convertible(self) -> list[dict]:
        """The buffered rows that convert one by one (only after a batch failed); the others go to `on_error`."""
        import pyarrow as pa

        good = []
        for values in zip(*self.columns.values(), strict=True):
            row = dict(zip(self.columns, values, strict=True))
            try:
                pa.Table.from_pylist([row], schema=self.schema)
            except (pa.ArrowException, UnicodeError, OverflowError, TypeError, ValueError) as err:
                self.rows -= 1
                self.on_error(row, err)
            else:
                good.append(row)
        return good

    def close(self) -> None:
        self.flush()
        self.writer.close()
        os.replace(self.tmp, self.path)
