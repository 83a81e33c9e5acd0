"""Stage `prepare`: raw benchmark files into examples with and without the user's history.

Outputs under `data/prepared/`: `{train,val,test}.parquet` (both views as text and token ids, the
target ids, truncation flags, and per-token preference labels on the synthetic benchmark),
`rejects.jsonl` (every malformed input record with file, line and reason) and, for Amazon Reviews
2023, `dropped.parquet` (every line a protocol filter removed, with its reason). Counts go to
`reports/data_stats.json`. The stage fails when rejects exceed `data.max_reject_fraction`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from nextquill.config import DataConfig, Params
from nextquill.data.amazon import connect, dropped_rows, file_counts, iter_users, kept_meta, run_protocol
from nextquill.data.amazon_raw import load_raw, raw_file
from nextquill.data.build import ExampleWriter, amazon_targets, write_targets
from nextquill.data.records import FileError, decode
from nextquill.data.schema import Ledger
from nextquill.data.validate import Invalid, Limits, remap_spans
from nextquill.io import atomic_dir, atomic_open, write_json, write_jsonl
from nextquill.paths import Paths
from nextquill.stages._cli import stage_main


class TooManyRejects(RuntimeError):
    """More input records were malformed than `data.max_reject_fraction` allows."""


TRUTH_FILE = "preference_spans.jsonl"


def load_truth(raw: Path) -> dict | None:
    """Ground-truth preference spans of the synthetic benchmark, keyed like a review; None for real data."""
    path = raw / TRUTH_FILE
    if not path.is_file():
        return None
    truth = {}
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = decode(line)
                if row["noise"] is None:
                    key = (row["user_id"], row["parent_asin"], row["timestamp"])
                    truth[key] = tuple((s["start"], s["end"]) for s in row["spans"])
            except (Invalid, KeyError, TypeError) as err:
                raise FileError(f"{path}:{number}: not a preference-span record ({err})") from None
    return truth


def _relative(path: Path | str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def prepare_amazon(cfg: DataConfig, raw: Path, out: Path, root: Path, emit) -> dict:
    """DPL protocol in DuckDB, then `emit(targets)` user by user. Returns the protocol's counts."""
    files = []
    for category in cfg.categories:
        files.append((category, "review", raw_file(raw / "review_categories", category)))
        files.append((category, "meta", raw_file(raw / "meta_categories", f"meta_{category}")))
    truth = load_truth(raw)
    with tempfile.TemporaryDirectory(prefix=".prepare-", dir=out.parent) as tmp:
        work = Path(tmp)
        loaded = load_raw(files, work, emit.ledger, Limits.from_config(cfg), keep_origins=truth is not None)
        for key, origin in loaded["origins"].items():  # cleaned texts: move the truth spans with them
            if truth is not None and key in truth:
                truth[key] = remap_spans(truth[key], origin)
        con = connect(work, cfg.duckdb_memory_gb, cfg.threads)
        parquet = {"review_parquet": work / "reviews.parquet", "meta_parquet": work / "meta.parquet"}
        thresholds = cfg.model_dump() | parquet
        summary = run_protocol(con, thresholds)
        kept, drops = file_counts(con)
        for file_id, (_, _, path) in enumerate(files):
            emit.ledger.keep(path, kept.get(file_id, 0))
            for reason, n in drops.get(file_id, {}).items():
                emit.ledger.drop(path, reason, n)
        meta = kept_meta(con)
        for category, user_id, rows in iter_users(con):
            emit(amazon_targets(category, user_id, rows, meta, truth, cfg.held_out))
        dropped_rows(con, [_relative(p, root) for _, _, p in files], out / "dropped.parquet")
        con.close()
    return {"valid_rows": loaded["rows"], **summary}


def _reader_targets(cfg: DataConfig, raw: Path, ledger: Ledger):
    limits = Limits.from_config(cfg)
    if cfg.format == "dpl":
        from nextquill.data.dpl import read_dpl

        return read_dpl(raw, list(cfg.categories), ledger, limits)
    from nextquill.data.lamp import read_lamp, read_longlamp

    return (read_lamp if cfg.format == "lamp" else read_longlamp)(raw, cfg.task, ledger, limits)


class _Emitter:
    """Feeds targets to the writer, with the relevance ranker reset per user when there is one."""

    def __init__(self, writer, tokenizer, cfg, ledger, ranker):
        self.writer, self.tokenizer, self.cfg, self.ledger, self.ranker = writer, tokenizer, cfg, ledger, ranker

    def __call__(self, targets) -> None:
        if self.ranker is not None:
            self.ranker.start_user()
        write_targets(targets, self.writer, self.tokenizer, self.cfg, self.ranker)


def accounting(ledger: Ledger, root: Path) -> dict:
    """Per input file: read = kept + rejected + dropped. A file that does not add up is a bug: fail loudly."""
    broken = ledger.unbalanced()
    if broken:
        raise RuntimeError("prepare's record accounting does not add up (a bug, please report it): "
                           + "; ".join(broken))
    return {_relative(name, root): counts.as_dict() for name, counts in sorted(ledger.files.items())}


def run(params: Params, paths: Paths) -> dict:
    from transformers import AutoTokenizer

    cfg = params.data
    raw = paths.root / cfg.raw_dir
    tokenizer = AutoTokenizer.from_pretrained(paths.base_model, local_files_only=True)
    ranker = None
    if cfg.history_selection == "relevance":
        from nextquill.data.relevance import RelevanceRanker

        ranker = RelevanceRanker()
    elif cfg.history_selection == "summary":
        from nextquill.model.summary import HistorySummarizer

        ranker = HistorySummarizer(paths.base_model, params.model.dtype, cfg.summary_max_new_tokens,
                                   cfg.max_prompt_tokens)
    with atomic_dir(paths.prepared) as out, atomic_open(out / "rejects.jsonl") as reject_file:
        ledger = Ledger(reject_file)
        writer = ExampleWriter(out, ledger)
        emit = _Emitter(writer, tokenizer, cfg, ledger, ranker)
        try:
            if cfg.format == "amazon2023":
                protocol = prepare_amazon(cfg, raw, out, paths.root, emit)
            else:
                emit(_reader_targets(cfg, raw, ledger))
                protocol = {}
        finally:
            writer.close()
        if cfg.history_selection == "summary":
            write_jsonl(out / "summaries.jsonl", ranker.summaries.values())
        files = accounting(ledger, paths.root)
    records = ledger.records
    stats = {"format": cfg.format, "raw_dir": cfg.raw_dir, "input_records": records, "files": files,
             "rejects": dict(sorted(ledger.counts.items())), "rejects_total": ledger.total,
             "history_entries_dropped": dict(sorted(ledger.entry_drops.items())),
             "users": len({key for key in writer.users}), **writer.stats()}
    if protocol:
        stats["protocol"] = protocol
    write_json(paths.reports / "data_stats.json", stats)
    fraction = ledger.total / max(records, 1)
    if fraction > cfg.max_reject_fraction:
        top = ", ".join(f"{k}: {v}" for k, v in ledger.counts.most_common(3))
        raise TooManyRejects(
            f"{fraction:.1%} of {records} input records were rejected ({top}), more than "
            f"data.max_reject_fraction = {cfg.max_reject_fraction}; see {paths.prepared / 'rejects.jsonl'}"
        )
    return {"examples": stats["examples"], "users": stats["users"], "rejects": ledger.total}


def main(argv: list[str] | None = None) -> int:
    # Bad input files end the stage with one line naming the file and the problem, not a traceback.
    return stage_main("prepare", run, argv, user_errors=(FileError, FileNotFoundError, TooManyRejects))


if __name__ == "__main__":
    sys.exit(main())
