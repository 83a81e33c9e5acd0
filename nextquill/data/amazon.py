"""The DPL construction protocol on Amazon Reviews 2023, out of core in DuckDB.

DuckDB, not Polars: the protocol is a loop of group-bys and anti-joins (iterative k-core) plus window
functions (per-user de-duplication and time split), which is plain SQL; DuckDB runs it over Parquet
with a hard memory limit and spills to disk past it, so the 29-million-review Books file fits in a
small, fixed amount of RAM. Every row a filter removes is recorded in `dropped` with its file, line
and reason: the protocol filters data, it never loses it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def connect(work: Path, memory_gb: float, threads: int):
    import duckdb

    con = duckdb.connect(str(work / "protocol.duckdb"))
    con.execute(f"SET memory_limit = '{memory_gb}GB'")
    con.execute(f"SET temp_directory = '{work / 'spill'}'")
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")  # lets DuckDB stream instead of buffering
    return con


def _drop(con, select_rids: str, reason: str, params: list | None = None) -> int:
    """Move the rows whose `rid` the query selects from `r` to `dropped`, with `reason`."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE d AS {select_rids}", params or [])
    n = con.execute("SELECT count(*) FROM d").fetchone()[0]
    if n:
        con.execute("INSERT INTO dropped SELECT file_id, line, ? FROM r SEMI JOIN d USING (rid)", [reason])
        con.execute("DELETE FROM r WHERE rid IN (SELECT rid FROM d)")
    return n


def _filter_meta(con, cfg) -> None:
    con.execute("CREATE TABLE dropped (file_id INTEGER, line BIGINT, reason VARCHAR)")
    con.execute("""CREATE TABLE m AS SELECT *, row_number() OVER
                   (PARTITION BY category, parent_asin ORDER BY file_id, line) AS dup FROM read_parquet(?)""",
                [str(cfg["meta_parquet"])])
    checks = [
        ("duplicate_meta", "dup > 1"),
        ("meta_missing_title", "trim(title) = ''"),
        ("meta_no_categories", "n_categories = 0"),
        ("meta_no_rating_number", "rating_number IS NULL"),
        ("meta_short_description", f"length(description) < {int(cfg['min_description_chars'])}"),
        ("meta_long_description", f"length(description) > {int(cfg['max_description_chars'])}"),
    ]
    for reason, condition in checks:
        con.execute(f"INSERT INTO dropped SELECT file_id, line, '{reason}' FROM m WHERE {condition}")
        con.execute(f"DELETE FROM m WHERE {condition}")


def _filter_reviews(con, cfg) -> None:
    con.execute("CREATE TABLE r AS SELECT row_number() OVER () AS rid, * FROM read_parquet(?)",
                [str(cfg["review_parquet"])])
    _drop(con, "SELECT rid FROM r WHERE trim(text) = ''", "empty_text")
    _drop(con, "SELECT rid FROM r WHERE length(text) < ?", "short_text", [int(cfg["min_review_chars"])])
    _drop(con, "SELECT rid FROM r WHERE trim(title) = ''", "missing_title")
    _drop(con, """SELECT rid FROM r WHERE NOT EXISTS (SELECT 1 FROM read_parquet(?) a
                  WHERE a.category = r.category AND a.parent_asin = r.parent_asin)""",
          "unknown_item", [str(cfg["meta_parquet"])])
    _drop(con, "SELECT rid FROM r ANTI JOIN m USING (category, parent_asin)", "item_meta_filter")
    # Per user, one review per item and per text, keeping the newest (ties: the later line).
    for key in ("parent_asin", "text"):
        _drop(con, f"""SELECT rid FROM (SELECT rid, row_number() OVER (PARTITION BY category, user_id, {key}
                       ORDER BY timestamp DESC, file_id DESC, line DESC) AS k FROM r) WHERE k > 1""", "duplicate")


def _kcore(con, cfg) -> int:
    """Items with >= item_min_users reviewers, users with user_min..user_max reviews, until stable."""
    rounds = 0
    while True:
        rounds += 1
        n = _drop(con, """SELECT rid FROM r JOIN (SELECT category, parent_asin FROM r GROUP BY ALL
                          HAVING count(DISTINCT user_id) < ?) USING (category, parent_asin)""",
                  "kcore_item", [int(cfg["item_min_users"])])
        n += _drop(con, """SELECT rid FROM r JOIN (SELECT category, user_id FROM r GROUP BY ALL
                           HAVING count(*) < ?) USING (category, user_id)""",
                   "kcore_user_few", [int(cfg["user_min_reviews"])])
        n += _drop(con, """SELECT rid FROM r JOIN (SELECT category, user_id FROM r GROUP BY ALL
                           HAVING count(*) > ?) USING (category, user_id)""",
                   "kcore_user_many", [int(cfg["user_max_reviews"])])
        if n == 0:
            return rounds


def _split_and_filter_profiles(con, cfg) -> int:
    """The last `held_out` reviews of each user are targets; the rest is the profile, filtered again."""
    con.execute("""CREATE OR REPLACE TABLE r AS SELECT *, (k > n - ?) AS is_input,
                   CAST(k - (n - ?) - 1 AS INTEGER) AS input_pos FROM (SELECT *,
                   row_number() OVER (PARTITION BY category, user_id ORDER BY timestamp, file_id, line) AS k,
                   count(*) OVER (PARTITION BY category, user_id) AS n FROM r)""",
                [int(cfg["held_out"])] * 2)
    rounds = 0
    while True:
        rounds += 1
        n = _drop(con, """SELECT rid FROM r JOIN (SELECT category, parent_asin FROM r WHERE NOT is_input
                          GROUP BY ALL HAVING count(DISTINCT user_id) < ?) USING (category, parent_asin)
                          WHERE NOT is_input""", "profile_item_filter", [int(cfg["profile_item_min_users"])])
        n += _drop(con, """SELECT rid FROM r WHERE (category, user_id) IN (SELECT (category, user_id) FROM r
                           GROUP BY ALL HAVING count(*) FILTER (WHERE NOT is_input) < ?)""",
                   "profile_user_filter", [int(cfg["profile_min_reviews"])])
        if n == 0:
            return rounds


def run_protocol(con, cfg: dict) -> dict:
    """Apply every filter; returns counts. `cfg` holds the thresholds and the two Parquet paths."""
    _filter_meta(con, cfg)
    _filter_reviews(con, cfg)
    kcore_rounds = _kcore(con, cfg)
    profile_rounds = _split_and_filter_profiles(con, cfg)
    dropped = dict(con.execute("SELECT reason, count(*) FROM dropped GROUP BY ALL ORDER BY 1").fetchall())
    users = con.execute("SELECT count(*) FROM (SELECT DISTINCT category, user_id FROM r)").fetchone()[0]
    return {"dropped": dropped, "kept_reviews": con.execute("SELECT count(*) FROM r").fetchone()[0],
            "users": users, "kcore_rounds": kcore_rounds, "profile_rounds": profile_rounds}


def iter_users(con, batch_rows: int = 20_000) -> Iterator[tuple[str, str, list[dict]]]:
    """(category, user_id, reviews oldest first) for every kept user, streamed in record batches."""
    reader = con.sql("""SELECT category, user_id, parent_asin, rating, title, text, timestamp, is_input,
                            input_pos FROM r ORDER BY category, user_id, timestamp, file_id, line""") \
        .to_arrow_reader(batch_rows)
    current, rows = None, []
    for batch in reader:
        for row in batch.to_pylist():
            key = (row["category"], row["user_id"])
            if key != current and rows:
                yield *current, rows
                rows = []
            current = key
            rows.append(row)
    if rows:
        yield *current, rows


def file_counts(con) -> tuple[dict[int, int], dict[int, dict[str, int]]]:
    """(kept rows by file_id, dropped rows by file_id and reason): every loaded row is in exactly one."""
    kept = con.execute("""SELECT file_id, count(*) FROM (SELECT file_id FROM r UNION ALL SELECT file_id FROM m)
                          GROUP BY ALL""").fetchall()
    drops: dict[int, dict[str, int]] = {}
    for file_id, reason, n in con.execute("SELECT file_id, reason, count(*) FROM dropped GROUP BY ALL").fetchall():
        drops.setdefault(file_id, {})[reason] = n
    return dict(kept), drops


def kept_meta(con) -> dict[tuple[str, str], tuple[str, str]]:
    """(category, parent_asin) -> (title, description) for the items the kept reviews mention."""
    rows = con.execute("""SELECT category, parent_asin, title, description FROM m
                          SEMI JOIN (SELECT DISTINCT category, parent_asin FROM r) USING (category, parent_asin)""")
    return {(c, a): (t, d) for c, a, t, d in rows.fetchall()}


def dropped_rows(con, files: list[str], out: Path) -> None:
    """Write every protocol-dropped input line, with its file and reason, to Parquet."""
    con.execute("CREATE OR REPLACE TEMP TABLE f AS SELECT * FROM unnest(?) WITH ORDINALITY AS t(file, id)", [files])
    con.execute(f"""COPY (SELECT f.file, d.line, d.reason FROM dropped d JOIN f ON f.id - 1 = d.file_id
                    ORDER BY f.file, d.line) TO '{out}' (FORMAT parquet, COMPRESSION zstd)""")
