"""Read LaMP (questions plus gold outputs) and LongLaMP (input/output/profile rows) into `Target`s.

Neither format has item metadata, so the query is empty and the task input is the question; each
profile item becomes one history entry holding the task's fields under readable labels, newest first
when every item has a parseable `date`, else in published order. File reading, type checks and
rejects are the shared helpers of `records.py`, so a bad record is logged the same way in every format.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from nextquill.data import records
from nextquill.data.records import NUMBER, TEXT, Problem, Spec
from nextquill.data.schema import SPLITS, HistoryEntry, RejectLog, Split, Target

log = logging.getLogger(__name__)

ID: tuple[type, ...] = (str, int)
VALUE: tuple[type, ...] = TEXT + NUMBER  # ratings and scores come as text in some dumps, numbers in others
TaskFields = tuple[tuple[str, str, tuple[type, ...]], ...]  # (field, label, accepted types), in prompt order

LAMP_FIELDS: dict[str, TaskFields] = {
    "LaMP_1": (("title", "Paper Title", TEXT), ("abstract", "Paper Abstract", TEXT)),
    "LaMP_2": (("description", "Movie Description", TEXT), ("tag", "Tag", TEXT)),
    "LaMP_3": (("text", "Review Text", TEXT), ("score", "Rating", VALUE)),
    "LaMP_4": (("text", "Article Text", TEXT), ("title", "Headline", TEXT)),
    "LaMP_5": (("abstract", "Paper Abstract", TEXT), ("title", "Paper Title", TEXT)),
    "LaMP_6": (("text", "Email Text", TEXT), ("title", "Email Subject", TEXT)),
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
    "product_review": (("overall", "Rating", VALUE), ("summary", "Review Summary", TEXT),
                       ("description", "Product Description", TEXT), ("reviewText", "Review Text", TEXT)),
    "abstract_generation": (("title", "Paper Title", TEXT), ("abstract", "Paper Abstract", TEXT)),
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
QUESTION_FIELDS: Spec = {"id": ID, "input": TEXT, "profile": (list,)}
GOLD_FIELDS: Spec = {"id": ID, "output": TEXT}
LONGLAMP_FIELDS_TOP: Spec = {"input": TEXT, "output": TEXT, "profile": (list,)}


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
    return value if isinstance(value, str) else str(float(value))  # numbers: "5.0", like the DPL ratings


def _history(profile: list[dict], fields: TaskFields) -> tuple[HistoryEntry, ...]:
    entries = [HistoryEntry(fields=tuple((label, _as_text(item[name])) for name, label, _ in fields),
                            timestamp=parse_date(item.get("date")),
                            relevance_text=" ".join(item[name] for name, _, types in fields if types == TEXT))
               for item in profile]
    if entries and all(entry.timestamp is not None for entry in entries):
        entries.sort(key=lambda entry: -entry.timestamp)  # stable: equal dates keep published order
    return tuple(entries)


def _target(task: str, split: Split, user_id: str, item_id: str, record: dict, output: str,
            fields: TaskFields, system: str) -> Target:
    return Target(example_id=f"{task}/{split}/{item_id}", user_id=user_id, split=split, category=task,
                  item_id=item_id, query=(), question=(("Input", record["input"]),), target=output,
                  history=_history(record["profile"], fields), system=system,
                  history_label="User's Past Writing", entry_label="Item")


def _profile_problem(record: dict, fields: TaskFields) -> Problem:
    return records.check_entries(record["profile"], {name: types for name, _, types in fields}, "profile")


# ---------------------------------------------------------------- LaMP

def read_lamp(raw_dir: Path, task: str, rejects: RejectLog) -> Iterator[Target]:
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
        golds = load_golds(outputs, task, rejects)
        yield from _read_lamp_split(questions, outputs.name, golds, task, split, rejects)


def load_golds(path: Path, task: str, rejects: RejectLog) -> dict[str, str]:
    """id -> output from a `{"task", "golds": [{"id", "output"}]}` file; the first gold of an id wins."""
    doc = records.load_json(path, dict)
    if doc.get("task", task) != task:
        raise ValueError(f"{path}: golds are for task {doc['task']!r}, not {task!r}")
    if not isinstance(doc.get("golds"), list):
        raise ValueError(f"{path}: 'golds' is missing or not a list")
    golds: dict[str, str] = {}
    for index, gold in enumerate(doc["golds"]):
        problem = records.check_fields(gold, GOLD_FIELDS, f"golds[{index}].") if isinstance(gold, dict) else (
            "wrong_type", f"golds[{index}]: expected an object, got {type(gold).__name__}")
        if problem is None and str(gold["id"]) in golds:
            problem = "duplicate", f"golds[{index}].id {gold['id']!r} already seen"
        if problem is not None:
            records.reject(rejects, path, index, *problem)
            continue
        golds[str(gold["id"])] = gold["output"]
    return golds


def _read_lamp_split(path: Path, outputs: str, golds: dict[str, str], task: str, split: Split,
                     rejects: RejectLog) -> Iterator[Target]:
    seen: set[str] = set()
    for number, record in records.iter_records(path, rejects):
        problem = (records.check_fields(record, QUESTION_FIELDS) or _profile_problem(record, LAMP_FIELDS[task])
                   or records.check_text(record["input"], "input"))
        qid = str(record["id"]) if problem is None else ""
        if problem is None and qid in seen:
            problem = "duplicate", f"id {qid!r} already seen"
        elif problem is None and qid not in golds:
            problem = "no_gold", f"id {qid!r} has no usable gold in {outputs}"
        elif problem is None:
            problem = records.check_text(golds[qid], f"output of id {qid!r} in {outputs}")
        if problem is not None:
            records.reject(rejects, path, number, *problem)
            continue
        seen.add(qid)
        yield _target(task, split, qid, qid, record, golds[qid], LAMP_FIELDS[task], LAMP_SYSTEM[task])
    unused = golds.keys() - seen
    if unused:
        log.warning("%s: %d golds match no usable question of %s", outputs, len(unused), path.name)


# ---------------------------------------------------------------- LongLaMP

def read_longlamp(raw_dir: Path, task: str, rejects: RejectLog) -> Iterator[Target]:
    """Targets of `raw_dir/{train,val,test}` as .jsonl(.gz), .json (a list) or .parquet."""
    _check_task(LONGLAMP_FIELDS, task)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"{raw_dir}: LongLaMP folder not found")
    for split in SPLITS:
        path = records.find_file(raw_dir, split, (".jsonl", ".jsonl.gz", ".json", ".parquet"))
        if path is None:
            log.warning("%s/%s.{jsonl,jsonl.gz,json,parquet} not found; %s split skipped", raw_dir, split, task)
            continue
        yield from _read_longlamp_split(path, task, split, rejects)


def _longlamp_problem(record: dict, task: str) -> Problem:
    spec = LONGLAMP_FIELDS_TOP | ({"reviewerId": TEXT} if task == "product_review" else {})
    problem = records.check_fields(record, spec)
    if problem is None and record.get("id") is not None:  # ids are optional in LongLaMP, but typed when given
        problem = records.check_fields(record, {"id": ID})
    return (problem or _profile_problem(record, LONGLAMP_FIELDS[task]) or records.check_text(record["input"], "input")
            or records.check_text(record["output"], "output"))


def _read_longlamp_split(path: Path, task: str, split: Split, rejects: RejectLog) -> Iterator[Target]:
    seen: set[tuple[str, ...]] = set()
    for number, record in records.iter_records(path, rejects):
        position = number - 1 if records.is_jsonl(path) else number  # 0-based place in the file: stable across runs
        problem = _longlamp_problem(record, task)
        has_id = problem is None and record.get("id") is not None
        item_id = str(record["id"]) if has_id else f"{split}-{position}"
        # without ids, a repeated (input, output) pair is the only way to see a duplicated record
        key = ("id", item_id) if has_id else ("content", str(record.get("input")), str(record.get("output")))
        if problem is None and key in seen:
            problem = "duplicate", f"id {item_id!r} already seen" if has_id else "same input and output already seen"
        if problem is not None:
            records.reject(rejects, path, number, *problem)
            continue
        seen.add(key)
        user_id = record["reviewerId"] if task == "product_review" else f"{split}-{position}"
        yield _target(task, split, user_id, item_id, record, record["output"], LONGLAMP_FIELDS[task],
                      LONGLAMP_SYSTEM[task])
