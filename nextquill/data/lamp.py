"""Read LaMP (questions plus gold outputs) and LongLaMP (input/output/profile rows) into `Target`s.

Neither format has item metadata, so the query is empty and the task input is the question; each
profile item becomes one history entry holding the task's fields under readable labels, newest first
when every item has a parseable `date`, else in published order. File reading, type checks and
rejects are the shared helpers of `records.py` and `validate.py`, so a bad record is logged the same way in
every format.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nextquill.data import records
from nextquill.data.schema import SPLITS, HistoryEntry, Ledger, Split, Target
from nextquill.data.validate import (
    TEXT_KINDS,
    Checked,
    Invalid,
    Kind,
    Limits,
    Spec,
    check,
    check_entries,
    check_size,
    require_text,
)

log = logging.getLogger(__name__)

TaskFields = tuple[tuple[str, str, Kind], ...]  # (field, label, kind), in prompt order
TEXT, LINE, SCORE = Kind.TEXT, Kind.LINE, Kind.SCORE  # ratings and scores: numbers, or numbers as text

LAMP_FIELDS: dict[str, TaskFields] = {
    "LaMP_1": (("title", "Paper Title", LINE), ("abstract", "Paper Abstract", TEXT)),
    "LaMP_2": (("description", "Movie Description", TEXT), ("tag", "Tag", LINE)),
    "LaMP_3": (("text", "Review Text", TEXT), ("score", "Rating", SCORE)),
    "LaMP_4": (("text", "Article Text", TEXT), ("title", "Headline", LINE)),
    "LaMP_5": (("abstract", "Paper Abstract", TEXT), ("title", "Paper Title", LINE)),
    "LaMP_6": (("text", "Email Text", TEXT), ("title", "Email Subject", LINE)),
    "LaMP_7": (("text", "Tweet", TEXT),),
}
LAMP_SYSTEM = {
    "LaMP_1": "Given the user's past papers, say which of the two references below the user is more likely to cite.\n",
    "LaMP_2": ("Given the user's past movie descriptions and tags, choose the tag the user would give the movie "
               "below.\n"),
    "LaMP_3": ("Given the user's past reviews and ratings, give the rating from 1 to 5 the user gave the review "
               "below.\n"),
    "LaMP_4": ("Given the user's past articles and headlines, write the headline the user would give the article "
               "below.\n"),
    "LaMP_5": "Given the user's past abstracts and titles, write the title the user would give the abstract below.\n",
    "LaMP_6": "Given the user's past emails and subjects, write the subject the user would give the email below.\n",
    "LaMP_7": "Given the user's past tweets, paraphrase the tweet below the way the user would write it.\n",
}
LONGLAMP_FIELDS: dict[str, TaskFields] = {
    "product_review": (("overall", "Rating", SCORE), ("summary", "Review Summary", LINE),
                       ("description", "Product Description", TEXT), ("reviewText", "Review Text", TEXT)),
    "abstract_generation": (("title", "Paper Title", LINE), ("abstract", "Paper Abstract", TEXT)),
    "topic_writing": (("summary", "Post Summary", TEXT), ("content", "Post Content", TEXT)),
}
LONGLAMP_SYSTEM = {
    "product_review": ("Given the user's past product reviews, write the review the user would give the product "
                       "below.\n"),
    "abstract_generation": ("Given the user's past paper titles and abstracts, write the abstract of the paper "
                            "below.\n"),
    "topic_writing": ("Given the user's past Reddit posts, write the post the user would write from the summary "
                      "below.\n"),
}
LAMP_SPLITS: tuple[tuple[str, Split], ...] = (("train", "train"), ("dev", "val"), ("test", "test"))
QUESTION_FIELDS: Spec = {"id": Kind.ID_OR_INT, "input": TEXT, "profile": Kind.LIST}
GOLD_FIELDS: Spec = {"id": Kind.ID_OR_INT, "output": TEXT}
LONGLAMP_FIELDS_TOP: Spec = {"id": Kind.ID_OR_INT, "input": TEXT, "output": TEXT, "profile": Kind.LIST}


def parse_date(value: object) -> int | None:
    """Unix seconds (UTC) of an ISO date or datetime, or of a bare year; None when absent or unparseable."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        moment = datetime(int(text), 1, 1) if re.fullmatch(r"\d{4}", text) else datetime.fromisoformat(text)
    except ValueError:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _check_task(table: dict[str, TaskFields], task: str) -> None:
    if task not in table:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(table)}")


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else str(value)  # ratings are floats: "5.0", like the DPL ratings


def _history(profile: list[dict], checked: list[Checked], fields: TaskFields) -> tuple[HistoryEntry, ...]:
    entries = [HistoryEntry(fields=tuple((label, _as_text(entry[name])) for name, label, _ in fields),
                            timestamp=parse_date(item.get("date")),
                            relevance_text=" ".join(entry[name] for name, _, kind in fields if kind in TEXT_KINDS))
               for item, entry in zip(profile, checked, strict=True)]
    if entries and all(entry.timestamp is not None for entry in entries):
        entries.sort(key=lambda entry: -entry.timestamp)  # stable: equal dates keep published order
    return tuple(entries)


@dataclass(frozen=True)
class _Record:
    """A question or LongLaMP row, checked: its fields and its profile entries."""

    fields: Checked
    profile: list[Checked]


def _target(task: str, split: Split, user_id: str, item_id: str, record: _Record, output: str,
            fields: TaskFields, system: str, sources: tuple[str, ...]) -> Target:
    return Target(example_id=f"{task}/{split}/{item_id}", user_id=user_id, split=split, category=task,
                  item_id=item_id, query=(), question=(("Input", record.fields["input"]),), target=output,
                  history=_history(record.fields["profile"], record.profile, fields), system=system,
                  history_label="User's Past Writing", entry_label="Item", sources=sources)


def _check_record(record: dict, spec: Spec, fields: TaskFields, limits: Limits,
                  optional: frozenset[str] = frozenset()) -> _Record:
    """The record's own fields and its profile, checked; the input must not be empty."""
    checked = check(record, spec, limits, optional=optional)
    check_size(checked.chars, limits)
    require_text(checked["input"], "input")
    profile, _ = check_entries(checked["profile"], {name: kind for name, _, kind in fields}, limits, "profile")
    return _Record(checked, profile)


# ---------------------------------------------------------------- LaMP

def read_lamp(raw_dir: Path, task: str, ledger: Ledger, limits: Limits) -> Iterator[Target]:
    """Targets of `raw_dir/{train,dev,test}_questions.json` with their golds from `*_outputs.json`."""
    _check_task(LAMP_FIELDS, task)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"{raw_dir}: LaMP folder not found")
    for stem, split in LAMP_SPLITS:
        questions, outputs = raw_dir / f"{stem}_questions.json", raw_dir / f"{stem}_outputs.json"
        missing = [path.name for path in (questions, outputs) if not path.is_file()]
        if missing:  # test golds are not public, so a split without outputs is expected, not an error
            log.warning("%s: %s not found; %s split %s skipped", raw_dir, " and ".join(missing), task, stem)
            continue
        golds = load_golds(outputs, task, ledger, limits)
        yield from _read_lamp_split(questions, outputs, golds, task, split, ledger, limits)


def load_golds(path: Path, task: str, ledger: Ledger, limits: Limits) -> dict[str, str]:
    """id -> output from a `{"task", "golds": [{"id", "output"}]}` file; the first gold of an id wins."""
    head, items = records.load_object(path, "golds", ledger)
    if head.get("task", task) != task:
        raise records.FileError(f"{path}: golds are for task {head['task']!r}, not {task!r}")
    if items is None:
        raise records.FileError(f"{path}: 'golds' is missing or not a list")
    golds: dict[str, str] = {}
    for index, gold in items:
        try:
            if not isinstance(gold, dict):
                raise Invalid("wrong_type", f"golds[{index}]: expected an object, got {type(gold).__name__}")
            checked = check(gold, GOLD_FIELDS, limits, f"golds[{index}].")
            check_size(checked.chars, limits, f"golds[{index}]")
            if checked["id"] in golds:
                raise Invalid("duplicate", f"golds[{index}].id {checked['id']!r} already seen")
        except Invalid as err:
            records.reject(ledger, path, index, err.reason, err.detail)
            continue
        golds[checked["id"]] = checked["output"]
    return golds


def _read_lamp_split(path: Path, outputs: Path, golds: dict[str, str], task: str, split: Split,
                     ledger: Ledger, limits: Limits) -> Iterator[Target]:
    seen: set[str] = set()
    for number, obj in records.iter_records(path, ledger):
        try:
            record = _check_record(obj, QUESTION_FIELDS, LAMP_FIELDS[task], limits)
            qid = record.fields["id"]
            if qid in seen:
                raise Invalid("duplicate", f"id {qid!r} already seen")
            if qid not in golds:
                raise Invalid("no_gold", f"id {qid!r} has no usable gold in {outputs.name}")
            require_text(golds[qid], f"output of id {qid!r} in {outputs.name}")
        except Invalid as err:
            records.reject(ledger, path, number, err.reason, err.detail)
            continue
        seen.add(qid)
        yield _target(task, split, qid, qid, record, golds[qid], LAMP_FIELDS[task], LAMP_SYSTEM[task],
                      (str(path), str(outputs)))
    unused = len(golds.keys() - seen)
    if unused:  # valid golds whose question is absent or was rejected: filtered, and counted
        ledger.drop(outputs, "gold_unused", unused)
        log.warning("%s: %d golds match no usable question of %s", outputs.name, unused, path.name)


# ---------------------------------------------------------------- LongLaMP

def read_longlamp(raw_dir: Path, task: str, ledger: Ledger, limits: Limits) -> Iterator[Target]:
    """Targets of `raw_dir/{train,val,test}` as .jsonl(.gz), .json (a list) or .parquet."""
    _check_task(LONGLAMP_FIELDS, task)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"{raw_dir}: LongLaMP folder not found")
    for split in SPLITS:
        path = records.find_file(raw_dir, split, (".jsonl", ".jsonl.gz", ".json", ".parquet"))
        if path is None:
            log.warning("%s/%s.{jsonl,jsonl.gz,json,parquet} not found; %s split skipped", raw_dir, split, task)
            continue
        yield from _read_longlamp_split(path, task, split, ledger, limits)


def _read_longlamp_split(path: Path, task: str, split: Split, ledger: Ledger, limits: Limits) -> Iterator[Target]:
    seen: set[tuple[str, ...]] = set()
    spec = LONGLAMP_FIELDS_TOP | ({"reviewerId": Kind.ID} if task == "product_review" else {})
    for number, obj in records.iter_records(path, ledger):
        position = number - 1 if records.is_jsonl(path) else number  # 0-based place in the file: stable across runs
        try:
            record = _check_record(obj, spec, LONGLAMP_FIELDS[task], limits, optional=frozenset({"id"}))
            require_text(record.fields["output"], "output")
            has_id = record.fields["id"] is not None  # ids are optional in LongLaMP, but checked when given
            item_id = record.fields["id"] if has_id else f"{split}-{position}"
            # without ids, a repeated (input, output) pair is the only way to see a duplicated record
            key = ("id", item_id) if has_id else ("content", record.fields["input"], record.fields["output"])
            if key in seen:
                raise Invalid("duplicate", f"id {item_id!r} already seen" if has_id
                              else "same input and output already seen")
        except Invalid as err:
            records.reject(ledger, path, number, err.reason, err.detail)
            continue
        seen.add(key)
        user_id = record.fields["reviewerId"] if task == "product_review" else f"{split}-{position}"
        yield _target(task, split, user_id, item_id, record, record.fields["output"], LONGLAMP_FIELDS[task],
                      LONGLAMP_SYSTEM[task], (str(path),))
