"""DPL, LaMP and LongLaMP readers: Targets field by field in every file format, and one test per kind of bad input.

Fixtures are written here into tmp_path. Each bad-input test puts one bad record between good ones and checks
that exactly that record is rejected, with its file, position and reason, while the good ones still come through.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nextquill.config import DataConfig
from nextquill.data.dpl import read_dpl
from nextquill.data.lamp import LAMP_SYSTEM, LONGLAMP_SYSTEM, parse_date, read_lamp, read_longlamp
from nextquill.data.schema import REVIEW_SYSTEM as SYSTEM
from nextquill.data.schema import HistoryEntry, Ledger
from nextquill.data.validate import Limits

LIMITS = Limits.from_config(DataConfig())
T0 = 1_600_000_000_000  # fixture timestamps are offsets from this moment (Unix ms, September 2020)


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def write_jsonl(path: Path, rows: list[object]) -> Path:
    """Rows that are bytes are written verbatim, so a test can plant a broken line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(row if isinstance(row, bytes) else line(row) for row in rows)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_json(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def reject_log() -> Ledger:
    return Ledger(handle=io.StringIO())


def reject_rows(rejects: Ledger) -> list[dict]:
    return [json.loads(row) for row in rejects.handle.getvalue().splitlines()]


# ---------------------------------------------------------------- DPL fixtures

META = [{"asin": "A1", "title": "Dune", "description": "Desert planet."},
        {"asin": "A2", "title": "Emma", "description": "A matchmaker."},
        {"asin": "A3", "title": "Ulysses", "description": "One day in Dublin."}]


def review(asin: str, text: str, timestamp: int, rating: object = 4.0, title: str = "Fine") -> dict:
    stamp = T0 + timestamp if isinstance(timestamp, int) else timestamp  # a wrong type stays as it is
    return {"asin": asin, "rating": rating, "text": text, "timestamp": stamp, "title": title}


def dpl_row(user: str, data: dict, profile: list | None = None) -> dict:
    default = [review("A2", "old", 100, 3.0, "Meh"), review("A3", "new", 300, 5.0, "Great")]
    return {"user_id": user, "profile": default if profile is None else profile, "data": data}


GOOD_1 = dpl_row("u1", review("A1", "Loved the sandworms.", 500, 5, "Wow"))
GOOD_2 = dpl_row("u2", review("A2", "Too much matchmaking.", 600, 2.0, "No"))


def dpl_dir(tmp_path: Path, train: list, meta: list | None = None) -> Path:
    write_jsonl(tmp_path / "meta.jsonl", META if meta is None else meta)
    write_jsonl(tmp_path / "Books" / "train.jsonl", train)
    return tmp_path


# ---------------------------------------------------------------- DPL

def test_dpl_target_field_by_field(tmp_path):
    root = dpl_dir(tmp_path, [GOOD_1, dpl_row("u1", review("A2", "Second.", 700))])
    write_jsonl(root / "Books" / "val.jsonl", [dpl_row("u1", review("A3", "Val text.", 800))])
    rejects = reject_log()
    targets = list(read_dpl(root, ["Books"], rejects, LIMITS))
    assert rejects.total == 0
    assert [t.example_id for t in targets] == ["Books/u1/train/0", "Books/u1/train/1", "Books/u1/val/0"]
    first = targets[0]
    assert (first.user_id, first.split, first.category, first.item_id) == ("u1", "train", "Books", "A1")
    assert first.query == (("Item Title", "Dune"), ("Item Description", "Desert planet."))
    assert first.question == (("Output Review Rating", "5.0"), ("Output Review Title", "Wow"))
    assert first.target == "Loved the sandworms."
    assert first.system == SYSTEM and SYSTEM.endswith("for the user.\n") and SYSTEM.count("\n") == 1
    assert (first.history_label, first.entry_label, first.target_spans) == ("User's Past Reviews", "Review", None)
    assert first.history == (  # newest first
        HistoryEntry(fields=(("Item Title", "Ulysses"), ("Item Description", "One day in Dublin."),
                             ("Review Rating", "5.0"), ("Review Title", "Great"), ("Review Text", "new")),
                     timestamp=T0 + 300, relevance_text="Ulysses Great new"),
        HistoryEntry(fields=(("Item Title", "Emma"), ("Item Description", "A matchmaker."),
                             ("Review Rating", "3.0"), ("Review Title", "Meh"), ("Review Text", "old")),
                     timestamp=T0 + 100, relevance_text="Emma Meh old"))
    assert targets[2].split == "val"


def test_dpl_gz_and_json_list_formats(tmp_path, caplog):
    write_jsonl(tmp_path / "meta.jsonl.gz", META)
    write_jsonl(tmp_path / "Books" / "train.jsonl.gz", [GOOD_1])
    write_json(tmp_path / "Movies_and_TV" / "test.json", [GOOD_2])
    rejects = reject_log()
    with caplog.at_level(logging.WARNING):
        targets = list(read_dpl(tmp_path, ["Books", "Movies_and_TV"], rejects, LIMITS))
    assert [t.example_id for t in targets] == ["Books/u1/train/0", "Movies_and_TV/u2/test/0"]
    assert targets[1].question == (("Output Review Rating", "2.0"), ("Output Review Title", "No"))
    assert rejects.total == 0
    assert sum("skipped" in r.message for r in caplog.records) == 4  # the missing splits, logged not raised


def test_dpl_meta_from_json_list(tmp_path):
    write_json(tmp_path / "meta.json", META)
    write_jsonl(tmp_path / "Books" / "train.jsonl", [GOOD_1])
    assert [t.query[0][1] for t in read_dpl(tmp_path, ["Books"], reject_log(), LIMITS)] == ["Dune"]


BAD_DPL = {
    "malformed_json": (b'{"user_id": "u9", "profile": [\n', "malformed_json", "Expecting"),
    "invalid_utf8": (b'{"user_id": "u\xff9"}\n', "invalid_utf8", "byte"),
    "missing_field": (line({k: v for k, v in GOOD_1.items() if k != "data"}), "missing_field", "data"),
    "missing_nested": (line(dpl_row("u9", {"asin": "A1", "rating": 4.0, "timestamp": 1, "title": "t"})),
                       "missing_field", "data.text"),
    "rating_five": (line(dpl_row("u9", review("A1", "x", 1, rating="five"))), "wrong_type", "data.rating"),
    "rating_bool": (line(dpl_row("u9", review("A1", "x", 1, rating=True))), "wrong_type", "data.rating"),
    "profile_not_list": (line({**GOOD_1, "profile": "none"}), "wrong_type", "profile: expected a list"),
    "profile_entry_type": (line(dpl_row("u9", review("A1", "x", 1), [review("A2", "y", "yesterday")])),
                           "wrong_type", "profile[0].timestamp"),
    "record_not_object": (line(["u9"]), "wrong_type", "record is a list"),
    "unknown_item": (line(dpl_row("u9", review("ZZ", "x", 1))), "unknown_item", "'ZZ'"),
    "rating_nan": (b'{"user_id": "u9", "profile": [], "data": {"rating": NaN}}\n', "not_finite", "NaN"),
    "rating_range": (line(dpl_row("u9", review("A1", "x", 1, rating=7))), "out_of_range", "data.rating"),
    "timestamp_negative": (line(dpl_row("u9", {**review("A1", "x", 1), "timestamp": -5})), "bad_timestamp",
                           "data.timestamp"),
    "control_text": (line(dpl_row("u9", review("A1", "\x00\u200b" * 150, 1))), "no_real_text", "data.text"),
    "surrogate": (b'{"user_id": "u9", "profile": [], "data": {"asin": "A1", "rating": 4, "text": "a\\ud800b", '
                  b'"timestamp": 1600000000000, "title": "t"}}\n', "invalid_unicode", "U+D800"),
    "empty_text": (line(dpl_row("u9", review("A1", "  \n ", 1))), "empty_text", "data.text"),
    "duplicate": (line({**GOOD_1, "profile": []}), "duplicate", "'A1'"),
    "blank_line": (b"\n", "empty_line", ""),
}


@pytest.mark.reliability
@pytest.mark.parametrize("kind", BAD_DPL)
def test_dpl_bad_jsonl_record(tmp_path, kind):
    bad, reason, detail = BAD_DPL[kind]
    root = dpl_dir(tmp_path, [GOOD_1, bad, GOOD_2])
    rejects = reject_log()
    targets = list(read_dpl(root, ["Books"], rejects, LIMITS))
    assert [t.example_id for t in targets] == ["Books/u1/train/0", "Books/u2/train/0"]
    assert dict(rejects.counts) == {reason: 1}
    (row,) = reject_rows(rejects)
    assert (row["file"], row["line"], row["reason"]) == (str(root / "Books" / "train.jsonl"), 2, reason)
    assert detail in row["detail"]


def test_dpl_unknown_profile_item_drops_only_that_entry(tmp_path):
    profile = [review("A2", "kept", 100), review("GONE", "dropped", 200), review("A3", "kept too", 300)]
    root = dpl_dir(tmp_path, [GOOD_2, dpl_row("u1", review("A1", "Fine.", 400), profile)])
    rejects = reject_log()
    targets = list(read_dpl(root, ["Books"], rejects, LIMITS))
    assert len(targets) == 2
    assert [entry.fields[-1][1] for entry in targets[1].history] == ["kept too", "kept"]
    assert dict(rejects.counts) == {} and dict(rejects.entry_drops) == {"unknown_item": 1}
    (row,) = reject_rows(rejects)
    assert (row["line"], row["reason"], row["scope"]) == (2, "unknown_item", "history_entry")
    assert "profile[1].asin 'GONE'" in row["detail"] and "dropped" in row["detail"]


@pytest.mark.reliability
def test_dpl_bad_meta_rows_are_rejected(tmp_path):
    meta = [META[0], b"{oops\n", {"asin": "A2", "title": "Emma"}, {**META[0], "title": "Dune again"}, *META[1:]]
    root = dpl_dir(tmp_path, [GOOD_1, GOOD_2], meta=meta)
    rejects = reject_log()
    targets = list(read_dpl(root, ["Books"], rejects, LIMITS))
    assert targets[0].query[0] == ("Item Title", "Dune")  # the first row of an asin wins
    assert len(targets) == 2
    assert dict(rejects.counts) == {"malformed_json": 1, "missing_field": 1, "duplicate": 1}
    assert [(r["line"], r["reason"]) for r in reject_rows(rejects)] == [
        (2, "malformed_json"), (3, "missing_field"), (4, "duplicate")]


@pytest.mark.reliability
def test_dpl_bad_record_in_json_list_reports_0_based_index(tmp_path):
    write_jsonl(tmp_path / "meta.jsonl", META)
    path = write_json(tmp_path / "Books" / "train.json", [GOOD_1, "not a record", {**GOOD_2, "user_id": 7}, GOOD_2])
    rejects = reject_log()
    assert [t.user_id for t in read_dpl(tmp_path, ["Books"], rejects, LIMITS)] == ["u1", "u2"]
    assert dict(rejects.counts) == {"wrong_type": 2}
    rows = reject_rows(rejects)
    assert [(r["file"], r["line"]) for r in rows] == [(str(path), 1), (str(path), 2)]
    assert all("(0-based)" in r["detail"] for r in rows)
    assert "user_id: expected a string id, got int" in rows[1]["detail"]


@pytest.mark.parametrize(("content", "problem"), [(b"[{]", r"byte 2: \] does not close"),
                                                  (b'{"a": 1}', "expected a JSON list"),
                                                  (b"\xff\xfe[\x00]\x00", "UTF-16"),
                                                  (b"[] []", "unexpected data after the end")])
@pytest.mark.reliability
def test_dpl_broken_json_list_file_is_a_hard_error(tmp_path, content, problem):
    write_jsonl(tmp_path / "meta.jsonl", META)
    (tmp_path / "Books").mkdir()
    (tmp_path / "Books" / "train.json").write_bytes(content)
    with pytest.raises(ValueError, match=problem) as err:
        list(read_dpl(tmp_path, ["Books"], reject_log(), LIMITS))
    assert "train.json" in str(err.value)


def test_dpl_missing_meta_or_category_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta"):
        list(read_dpl(tmp_path, ["Books"], reject_log(), LIMITS))
    write_jsonl(tmp_path / "meta.jsonl", META)
    with pytest.raises(FileNotFoundError, match="Books"):
        list(read_dpl(tmp_path, ["Books"], reject_log(), LIMITS))


# ---------------------------------------------------------------- LaMP

def question(qid: str, text: str = "Article body.", profile: list | None = None) -> dict:
    default = [{"id": f"{qid}-a", "text": "Old article.", "title": "Old news", "date": "2014-05-23"},
               {"id": f"{qid}-b", "text": "New article.", "title": "New news", "date": "2016-01-02"}]
    return {"id": qid, "input": f"Generate a headline for: {text}", "profile": default if profile is None else profile}


def golds(*pairs: tuple[str, str], task: str = "LaMP_4") -> dict:
    return {"task": task, "golds": [{"id": qid, "output": out} for qid, out in pairs]}


def test_lamp_target_field_by_field(tmp_path, caplog):
    write_json(tmp_path / "train_questions.json", [question("100")])
    write_json(tmp_path / "train_outputs.json", golds(("100", "Headline one")))
    write_json(tmp_path / "dev_questions.json", [question("200")])
    write_json(tmp_path / "dev_outputs.json", golds(("200", "Headline two")))
    write_json(tmp_path / "test_questions.json", [question("300")])  # test golds are not public
    rejects = reject_log()
    with caplog.at_level(logging.WARNING):
        targets = list(read_lamp(tmp_path, "LaMP_4", rejects, LIMITS))
    assert rejects.total == 0
    assert any("test_outputs.json not found" in r.message for r in caplog.records)
    assert [(t.example_id, t.split) for t in targets] == [("LaMP_4/train/100", "train"), ("LaMP_4/val/200", "val")]
    first = targets[0]
    assert (first.user_id, first.item_id, first.category, first.query) == ("100", "100", "LaMP_4", ())
    assert first.question == (("Input", "Generate a headline for: Article body."),)
    assert first.target == "Headline one"
    assert first.system == LAMP_SYSTEM["LaMP_4"] == (
        "Given the user's past articles and headlines, write the headline the user would give the article below.\n")
    assert (first.history_label, first.entry_label) == ("User's Past Writing", "Item")
    assert first.history == (  # newest first: every entry has a date
        HistoryEntry(fields=(("Article Text", "New article."), ("Headline", "New news")), timestamp=1451692800,
                     relevance_text="New article. New news"),
        HistoryEntry(fields=(("Article Text", "Old article."), ("Headline", "Old news")), timestamp=1400803200,
                     relevance_text="Old article. Old news"))


def test_lamp_profiles_without_full_dates_keep_published_order(tmp_path):
    profile = [{"id": "a", "text": "first", "date": "2012"}, {"id": "b", "text": "second", "date": "someday"},
               {"id": "c", "text": "third"}]
    write_json(tmp_path / "train_questions.json", [question("1", profile=profile)])
    write_json(tmp_path / "train_outputs.json", golds(("1", "a tweet"), task="LaMP_7"))
    (target,) = read_lamp(tmp_path, "LaMP_7", reject_log(), LIMITS)
    assert [e.fields for e in target.history] == [(("Tweet", "first"),), (("Tweet", "second"),), (("Tweet", "third"),)]
    assert [e.timestamp for e in target.history] == [parse_date("2012-01-01"), None, None]


def test_lamp_numeric_scores_and_unknown_task(tmp_path):
    profile = [{"id": "a", "text": "ok", "score": "4"}, {"id": "b", "text": "great", "score": 5}]
    write_json(tmp_path / "train_questions.json", [question("1", profile=profile)])
    write_json(tmp_path / "train_outputs.json", golds(("1", "5"), task="LaMP_3"))
    (target,) = read_lamp(tmp_path, "LaMP_3", reject_log(), LIMITS)
    assert [e.fields for e in target.history] == [(("Review Text", "ok"), ("Rating", "4.0")),
                                                  (("Review Text", "great"), ("Rating", "5.0"))]
    with pytest.raises(ValueError, match="unknown task 'LaMP_9'"):
        list(read_lamp(tmp_path, "LaMP_9", reject_log(), LIMITS))
    with pytest.raises(ValueError, match="golds are for task 'LaMP_3'"):
        list(read_lamp(tmp_path, "LaMP_4", reject_log(), LIMITS))


BAD_LAMP = {
    "missing_field": ({"id": "9", "profile": []}, "missing_field", "input"),
    "profile_not_list": ({**question("9"), "profile": {"id": "x"}}, "wrong_type", "profile: expected a list"),
    "profile_field_type": (question("9", profile=[{"id": "x", "text": ["a"], "title": "t"}]), "wrong_type",
                           "profile[0].text"),
    "profile_field_missing": (question("9", profile=[{"id": "x", "text": "a"}]), "missing_field", "profile[0].title"),
    "id_type": ({**question("9"), "id": 9.5}, "wrong_type", "id: expected a string or integer id, got float"),
    "empty_input": ({**question("9"), "input": ""}, "empty_text", "input"),
    "empty_output": (question("empty"), "empty_text", "output of id 'empty'"),
    "duplicate": (question("1"), "duplicate", "id '1'"),
    "no_gold": (question("nogold"), "no_gold", "'nogold'"),
    "not_object": ("just text", "wrong_type", "record is a str"),
}


@pytest.mark.reliability
@pytest.mark.parametrize("kind", BAD_LAMP)
def test_lamp_bad_question(tmp_path, kind):
    bad, reason, detail = BAD_LAMP[kind]
    path = write_json(tmp_path / "dev_questions.json", [question("1"), bad, question("2")])
    write_json(tmp_path / "dev_outputs.json", golds(("1", "h1"), ("2", "h2"), ("9", "h9"), ("empty", " ")))
    rejects = reject_log()
    assert [t.example_id for t in read_lamp(tmp_path, "LaMP_4", rejects, LIMITS)] == ["LaMP_4/val/1", "LaMP_4/val/2"]
    assert dict(rejects.counts) == {reason: 1}
    (row,) = reject_rows(rejects)
    assert (row["file"], row["line"], row["reason"]) == (str(path), 1, reason)
    assert "record index 1 (0-based)" in row["detail"] and detail in row["detail"]


@pytest.mark.reliability
def test_lamp_bad_golds_are_rejected(tmp_path):
    write_json(tmp_path / "train_questions.json", [question("1"), question("2"), question("3")])
    outputs = golds(("1", "h1"), ("1", "again"), ("3", "h3"))
    outputs["golds"][1:1] = ["oops", {"id": "2"}]
    path = write_json(tmp_path / "train_outputs.json", outputs)
    rejects = reject_log()
    targets = list(read_lamp(tmp_path, "LaMP_4", rejects, LIMITS))
    assert [(t.item_id, t.target) for t in targets] == [("1", "h1"), ("3", "h3")]
    assert dict(rejects.counts) == {"wrong_type": 1, "missing_field": 1, "duplicate": 1, "no_gold": 1}
    rows = reject_rows(rejects)
    assert [(Path(r["file"]).name, r["line"], r["reason"]) for r in rows] == [
        (path.name, 1, "wrong_type"), (path.name, 2, "missing_field"), (path.name, 3, "duplicate"),
        ("train_questions.json", 1, "no_gold")]
    assert "golds[2].output" in rows[1]["detail"]


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("train_questions.json", b'[{"id": [}]', "does not close"),
    ("train_outputs.json", b"[]", "not a JSON object"),
    ("train_outputs.json", b'{"task": "LaMP_4"}', "'golds'")])
@pytest.mark.reliability
def test_lamp_broken_file_is_a_hard_error(tmp_path, name, content, problem):
    write_json(tmp_path / "train_questions.json", [question("1")])
    write_json(tmp_path / "train_outputs.json", golds(("1", "h1")))
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=problem) as err:
        list(read_lamp(tmp_path, "LaMP_4", reject_log(), LIMITS))
    assert name in str(err.value)


# ---------------------------------------------------------------- LongLaMP

def product(reviewer: str, output: str, **extra: object) -> dict:
    profile = [{"overall": 5.0, "summary": "Nice", "description": "A kettle.", "reviewText": "Boils fast."},
               {"overall": "2", "summary": "Meh", "description": "A toaster.", "reviewText": "Burns bread."}]
    return {"reviewerId": reviewer, "input": "Write a review of: A lamp.", "output": output, "profile": profile,
            **extra}


def test_longlamp_product_review_jsonl(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [product("R1", "Bright lamp."), product("R2", "Dim lamp.")])
    rejects = reject_log()
    targets = list(read_longlamp(tmp_path, "product_review", rejects, LIMITS))
    assert rejects.total == 0
    assert [(t.example_id, t.user_id, t.item_id) for t in targets] == [
        ("product_review/train/train-0", "R1", "train-0"), ("product_review/train/train-1", "R2", "train-1")]
    first = targets[0]
    assert (first.split, first.category, first.query, first.target) == ("train", "product_review", (), "Bright lamp.")
    assert first.question == (("Input", "Write a review of: A lamp."),)
    assert first.system == LONGLAMP_SYSTEM["product_review"] and first.system.endswith(".\n")
    assert (first.history_label, first.entry_label) == ("User's Past Writing", "Item")
    assert first.history == (  # no dates: published order
        HistoryEntry(fields=(("Rating", "5.0"), ("Review Summary", "Nice"), ("Product Description", "A kettle."),
                             ("Review Text", "Boils fast.")), timestamp=None,
                     relevance_text="Nice A kettle. Boils fast."),
        HistoryEntry(fields=(("Rating", "2.0"), ("Review Summary", "Meh"), ("Product Description", "A toaster."),
                             ("Review Text", "Burns bread.")), timestamp=None,
                     relevance_text="Meh A toaster. Burns bread."))


def test_longlamp_abstract_generation_parquet(tmp_path):
    rows = [{"input": "Title: Graphs", "output": "We study graphs.",
             "profile": [{"title": "Trees", "abstract": "We study trees."}]},
            {"input": "Title: Rings", "output": "We study rings.",
             "profile": [{"title": "Groups", "abstract": "We study groups."}, {"title": "Fields", "abstract": None}]}]
    path = tmp_path / "val.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    rejects = reject_log()
    (target,) = read_longlamp(tmp_path, "abstract_generation", rejects, LIMITS)
    assert (target.example_id, target.user_id, target.split) == ("abstract_generation/val/val-0", "val-0", "val")
    assert target.history == (HistoryEntry(fields=(("Paper Title", "Trees"), ("Paper Abstract", "We study trees.")),
                                           relevance_text="Trees We study trees."),)
    assert target.system == LONGLAMP_SYSTEM["abstract_generation"]
    (row,) = reject_rows(rejects)  # a null in a Parquet column is a missing field
    assert (row["file"], row["line"], row["reason"]) == (str(path), 1, "missing_field")
    assert "profile[1].abstract" in row["detail"] and "(0-based)" in row["detail"]


def test_longlamp_topic_writing_json_list_with_ids_and_dates(tmp_path):
    profile = [{"summary": "old", "content": "Old post.", "date": "2019-03-01"},
               {"summary": "new", "content": "New post.", "date": "2020-07-04T12:00:00"}]
    write_json(tmp_path / "test.json", [{"id": 41, "input": "Summary: a walk", "output": "I walked.",
                                         "profile": profile}])
    (target,) = read_longlamp(tmp_path, "topic_writing", reject_log(), LIMITS)
    assert (target.example_id, target.item_id, target.user_id) == ("topic_writing/test/41", "41", "test-0")
    assert [e.fields for e in target.history] == [(("Post Summary", "new"), ("Post Content", "New post.")),
                                                  (("Post Summary", "old"), ("Post Content", "Old post."))]
    assert target.history[0].timestamp == 1593864000


BAD_LONGLAMP = {
    "malformed_json": (b'{"reviewerId": "R9", \n', "malformed_json", "Expecting"),
    "invalid_utf8": (b'{"reviewerId": "R\xc3\x289"}\n', "invalid_utf8", "byte"),
    "missing_field": (line({k: v for k, v in product("R9", "x").items() if k != "reviewerId"}), "missing_field",
                      "reviewerId"),
    "wrong_type": (line({**product("R9", "x"), "profile": "none"}), "wrong_type", "profile: expected a list"),
    "wrong_rating": (line({**product("R9", "x"), "profile": [{**product("R9", "x")["profile"][0], "overall": [5]}]}),
                     "wrong_type", "profile[0].overall"),
    "id_type": (line(product("R9", "x", id={"n": 1})), "wrong_type", "id: expected a string or integer id, got dict"),
    "empty_text": (line(product("R9", "")), "empty_text", "output"),
    "duplicate_id": (line(product("R9", "other text", id="a")), "duplicate", "id 'a'"),
    "duplicate_content": (line(product("R1", "First.")), "duplicate", "same input and output"),
}


@pytest.mark.reliability
@pytest.mark.parametrize("kind", BAD_LONGLAMP)
def test_longlamp_bad_jsonl_record(tmp_path, kind):
    bad, reason, detail = BAD_LONGLAMP[kind]
    first = product("R1", "First.", id="a") if kind == "duplicate_id" else product("R1", "First.")
    path = write_jsonl(tmp_path / "train.jsonl.gz", [first, bad, product("R2", "Third.")])
    rejects = reject_log()
    targets = list(read_longlamp(tmp_path, "product_review", rejects, LIMITS))
    assert [(t.user_id, t.target) for t in targets] == [("R1", "First."), ("R2", "Third.")]
    assert targets[1].item_id == "train-2"  # the position in the file, not among kept records
    assert dict(rejects.counts) == {reason: 1}
    (row,) = reject_rows(rejects)
    assert (row["file"], row["line"], row["reason"]) == (str(path), 2, reason)
    assert detail in row["detail"]


def test_longlamp_unknown_task_and_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        list(read_longlamp(tmp_path, "email_generation", reject_log(), LIMITS))
    with pytest.raises(FileNotFoundError):
        list(read_longlamp(tmp_path / "absent", "topic_writing", reject_log(), LIMITS))


@pytest.mark.parametrize(("value", "expected"), [
    ("2014-05-23", 1400803200), ("2014", 1388534400), (2014, 1388534400), ("2014-05-23T00:00:00+02:00", 1400796000),
    ("May 2014", None), (None, None), (True, None), (["2014"], None)])
def test_parse_date(value, expected):
    assert parse_date(value) == expected
