"""Hostile input: no record crashes `prepare`, nothing invalid reaches a prompt, and every record is accounted for.

Property tests (Hypothesis) build raw files from valid records and hostile ones of every class in
`tests/hostile.py` plus random ones (wrong types in every field, huge numbers, deep nesting, control
and zero-width text, surrogates, duplicate keys, BOM, CRLF, empty and whitespace values, files cut
short) and check, for every reader: no exception escapes, read = kept + rejected + dropped per file,
and no kept field holds a control character, a non-finite or out-of-range number.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import sys
import unicodedata
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nextquill.config import DataConfig, Params
from nextquill.data.amazon_raw import load_raw
from nextquill.data.dpl import read_dpl
from nextquill.data.lamp import read_lamp, read_longlamp
from nextquill.data.records import FileError
from nextquill.data.schema import Ledger
from nextquill.data.validate import REASONS, Limits, clean_text
from nextquill.paths import Paths
from nextquill.stages import prepare

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile  # noqa: E402  (tests/hostile.py: the hostile classes, shared with the dirty-copy script)

pytestmark = pytest.mark.reliability
LIMITS = Limits.from_config(DataConfig())
T0 = 1_600_000_000_000
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


def valid_review(i: int, user: str = "U1", item: str = "I1") -> dict:
    return {"rating": float(1 + i % 5), "title": f"Title {i}", "text": f"Review number {i} of {item} by {user}. " * 8,
            "images": [], "asin": item, "parent_asin": item, "user_id": user, "timestamp": T0 + i * 1000,
            "helpful_vote": 0, "verified_purchase": True}


# ---------------------------------------------------------------- strategies

HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.just(float("nan")), st.just(float("inf")), st.just(-float("inf")),
    st.integers(min_value=-(2**80), max_value=2**80), st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=hostile.CONTROL + hostile.ZERO_WIDTH + " \t\r\n", max_size=30),
    st.text(max_size=30), st.just(""), st.just("   "), st.just("\ud800"), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def hostile_line(draw, record: dict) -> bytes:
    """One hostile JSONL line made from `record`: a known class, or a random value in a random field."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        make, _ = draw(st.sampled_from(sorted(hostile.REJECTED.items())))[1]
        return make(dict(record))
    if choice == 1:
        return draw(st.sampled_from(sorted(hostile.CLEANED.items())))[1](dict(record))
    field = draw(st.sampled_from(sorted(record)))
    return hostile.dumps({**record, field: draw(HOSTILE_VALUES)})


@st.composite
def jsonl_file(draw, records: list[dict]) -> tuple[bytes, bool]:
    """(file bytes, gzip?) mixing valid and hostile lines, with BOM, CRLF and a cut gzip at random."""
    lines = [hostile.dumps(r) for r in records]
    for _ in range(draw(st.integers(1, 12))):
        base = draw(st.sampled_from(records))
        lines.insert(draw(st.integers(0, len(lines))), draw(hostile_line(base)))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + newline.join(lines) + newline
    if draw(st.booleans()):
        packed = gzip.compress(data)
        cut = draw(st.sampled_from([len(packed), len(packed) - 5, len(packed) // 2]))
        return packed[:cut], True
    return data, False


def check_clean_text(value: str, where: str) -> None:
    bad = [c for c in value if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs")]
    assert not bad, f"{where} keeps control characters {bad!r}"


def assert_balanced(ledger: Ledger) -> None:
    assert ledger.unbalanced() == []
    assert set(ledger.counts) <= set(REASONS)


# ---------------------------------------------------------------- the Amazon loader

@SETTINGS
@given(data=st.data())
def test_amazon_loader_survives_hostile_files_and_keeps_only_clean_rows(tmp_path, data):
    records = [valid_review(i, f"U{i % 3}", f"I{i % 4}") for i in range(8)]
    content, packed = data.draw(jsonl_file(records))
    path = tmp_path / ("Books.jsonl.gz" if packed else "Books.jsonl")
    path.write_bytes(content)
    ledger = Ledger(io.StringIO())
    try:
        loaded = load_raw([("Books", "review", path)], tmp_path / "out", ledger, LIMITS, keep_origins=False)
    except FileError as err:  # only a whole-file failure may stop the stage, and it names the file
        assert str(path) in str(err)
        return
    rows = pq.read_table(tmp_path / "out" / "reviews.parquet").to_pylist()
    counts = ledger.files[str(path)]
    assert counts.read == loaded["rows"]["review"] + sum(counts.rejects.values()) == len(rows) + ledger.total
    assert set(ledger.counts) <= set(REASONS)
    lo, hi = LIMITS.timestamp_ms_range
    for row in rows:
        assert 1.0 <= row["rating"] <= 5.0 and math.isfinite(row["rating"])
        assert lo <= row["timestamp"] <= hi
        for field in ("title", "text", "user_id", "parent_asin"):
            check_clean_text(row[field], f"line {row['line']} {field}")
        assert "\n" not in row["title"]


@pytest.mark.parametrize("name", sorted(hostile.REJECTED))
def test_each_hostile_class_is_rejected_with_its_reason(tmp_path, name):
    make, reason = hostile.REJECTED[name]
    good = [valid_review(i) for i in range(2)]
    path = tmp_path / "Books.jsonl"
    path.write_bytes(b"\n".join([hostile.dumps(good[0]), make(valid_review(5)), hostile.dumps(good[1])]) + b"\n")
    ledger = Ledger(io.StringIO())
    loaded = load_raw([("Books", "review", path)], tmp_path / "out", ledger, LIMITS, keep_origins=False)
    assert loaded["rows"]["review"] == 2
    assert dict(ledger.counts) == {reason: 1}
    (row,) = [json.loads(x) for x in ledger.handle.getvalue().splitlines()]
    assert (row["file"], row["line"], row["reason"]) == (str(path), 2, reason)


@pytest.mark.parametrize("name", sorted(hostile.META_REJECTED))
def test_each_hostile_meta_class_is_rejected_with_its_reason(tmp_path, name):
    make, reason = hostile.META_REJECTED[name]
    meta = {"parent_asin": "I1", "title": "Item", "description": ["A description."], "categories": ["Books"],
            "rating_number": 10, "details": {}}
    path = tmp_path / "meta_Books.jsonl"
    path.write_bytes(hostile.dumps(meta) + b"\n" + make(dict(meta)) + b"\n")
    ledger = Ledger(io.StringIO())
    loaded = load_raw([("Books", "meta", path)], tmp_path / "out", ledger, LIMITS, keep_origins=False)
    assert loaded["rows"]["meta"] == 1 and dict(ledger.counts) == {reason: 1}


def test_cleaned_text_moves_the_truth_spans_with_it():
    raw = "\x00Great \u200bbook,\r\nreally great."
    cleaned, origin = clean_text(raw, "text")
    assert cleaned == "Great book,\nreally great."
    from nextquill.data.validate import remap_spans

    spans = ((raw.index("book"), raw.index("book") + 4), (raw.index("really"), raw.index("really") + 6))
    assert [cleaned[a:b] for a, b in remap_spans(spans, origin)] == ["book", "really"]


def test_a_truncated_gzip_keeps_the_lines_before_the_cut_and_says_where(tmp_path):
    data = b"".join(hostile.dumps(valid_review(i)) + b"\n" for i in range(400))
    path = tmp_path / "Books.jsonl.gz"
    packed = gzip.compress(data)
    path.write_bytes(packed[: len(packed) // 2])
    ledger = Ledger(io.StringIO())
    loaded = load_raw([("Books", "review", path)], tmp_path / "out", ledger, LIMITS, keep_origins=False)
    (row,) = [json.loads(x) for x in ledger.handle.getvalue().splitlines()]
    kept = loaded["rows"]["review"]
    assert 0 < kept < 400 and row["reason"] == "truncated_file" and row["line"] == kept + 1
    assert f"lines 1-{kept} are kept" in row["detail"] and "ends early" in row["detail"]
    assert ledger.files[str(path)].read == kept + 1


def test_a_corrupt_gzip_is_one_line_naming_the_file_and_the_byte(tmp_path):
    packed = bytearray(gzip.compress(b"".join(hostile.dumps(valid_review(i)) + b"\n" for i in range(400))))
    packed[200:260] = b"\xff" * 60
    path = tmp_path / "Books.jsonl.gz"
    path.write_bytes(bytes(packed))
    expected = re.escape(str(path)) + r": corrupt gzip data in compressed bytes 0-[0-9,]+: Error -3"
    with pytest.raises(FileError, match=expected):
        load_raw([("Books", "review", path)], tmp_path / "out", Ledger(), LIMITS, keep_origins=False)


# ---------------------------------------------------------------- DPL, LaMP and LongLaMP

def _consume(targets, ledger: Ledger) -> list:
    """What the writer does with each target: its source records count as kept."""
    out = []
    for target in targets:
        for source in target.sources:
            ledger.keep(source)
        out.append(target)
    return out


def check_targets(targets: list) -> None:
    for target in targets:
        for label, value in (*target.query, *target.question, ("target", target.target),
                             *(field for entry in target.history for field in entry.fields)):
            check_clean_text(value, f"{target.example_id} {label}")
            if "Rating" in label:
                assert math.isfinite(float(value)) and 1.0 <= float(value) <= 5.0, (label, value)


def _mutate(draw, records: list[dict], nested: tuple[str, ...]) -> list[bytes]:
    """Valid records as lines, plus hostile copies with a random value in a random (possibly nested) field."""
    lines = [hostile.dumps(r) for r in records]
    for _ in range(draw(st.integers(1, 10))):
        record = json.loads(json.dumps(draw(st.sampled_from(records))))
        target = record
        for key in nested[: draw(st.integers(0, len(nested)))]:
            target = target[key] if isinstance(target, dict) else target[0]
        if isinstance(target, dict) and target:
            target[draw(st.sampled_from(sorted(target)))] = draw(HOSTILE_VALUES)
        line = hostile.dumps(record)
        if draw(st.booleans()):
            line = draw(hostile_line(valid_review(0)))  # a known class on a foreign record
        lines.insert(draw(st.integers(0, len(lines))), line)
    return lines


@SETTINGS
@given(data=st.data())
def test_dpl_reader_survives_hostile_records(tmp_path, data):
    meta = [{"asin": f"A{i}", "title": f"Item {i}", "description": "About it."} for i in range(3)]
    review = {"asin": "A0", "rating": 4.0, "text": "Fine.", "timestamp": T0, "title": "Ok"}
    rows = [{"user_id": f"u{i}", "profile": [{**review, "asin": "A1"}], "data": {**review, "text": f"Text {i}."}}
            for i in range(4)]
    (tmp_path / "Books").mkdir(exist_ok=True)
    (tmp_path / "meta.jsonl").write_bytes(b"\n".join(_mutate(data.draw, meta, ())) + b"\n")
    as_list = data.draw(st.booleans())
    lines = _mutate(data.draw, rows, ("data",) if data.draw(st.booleans()) else ("profile", "0"))
    path = tmp_path / "Books" / ("train.json" if as_list else "train.jsonl")
    for stale in (tmp_path / "Books").iterdir():
        stale.unlink()
    path.write_bytes(b"[" + b",".join(lines) + b"]" if as_list else b"\n".join(lines) + b"\n")
    ledger = Ledger(io.StringIO())
    try:
        targets = _consume(read_dpl(tmp_path, ["Books"], ledger, LIMITS), ledger)
    except FileError as err:  # only a list whose brackets do not balance (JSONL lines are independent)
        assert as_list and str(tmp_path) in str(err) and "does not close" in str(err)
        return
    assert_balanced(ledger)
    check_targets(targets)


@SETTINGS
@given(data=st.data())
def test_longlamp_reader_survives_hostile_records(tmp_path, data):
    rows = [{"reviewerId": f"r{i}", "input": f"Write about item {i}", "output": f"My review {i}.",
             "profile": [{"overall": 5.0, "summary": "Nice", "description": "A kettle.", "reviewText": "Boils."}]}
            for i in range(4)]
    lines = _mutate(data.draw, rows, ("profile", "0"))
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    ledger = Ledger(io.StringIO())
    targets = _consume(read_longlamp(tmp_path, "product_review", ledger, LIMITS), ledger)
    assert_balanced(ledger)
    check_targets(targets)


@SETTINGS
@given(data=st.data())
def test_lamp_reader_survives_hostile_records(tmp_path, data):
    questions = [{"id": str(i), "input": f"Headline for story {i}",
                  "profile": [{"id": f"p{i}", "text": "Old story.", "title": "Old headline"}]} for i in range(4)]
    golds = [{"id": str(i), "output": f"Headline {i}"} for i in range(4)]
    lines = _mutate(data.draw, questions, ("profile", "0"))
    if data.draw(st.booleans()):  # a list cut short
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
        (tmp_path / "train_questions.json").write_bytes(b"[" + b",".join(lines))
    else:
        (tmp_path / "train_questions.json").write_bytes(b"[" + b",".join(lines) + b"]")
    gold_lines = _mutate(data.draw, golds, ())
    (tmp_path / "train_outputs.json").write_bytes(b'{"task": "LaMP_4", "golds": [' + b",".join(gold_lines) + b"]}")
    ledger = Ledger(io.StringIO())
    try:
        targets = _consume(read_lamp(tmp_path, "LaMP_4", ledger, LIMITS), ledger)
    except FileError as err:  # a list whose brackets do not balance: where its elements end is unknown
        assert str(tmp_path) in str(err) and "does not close" in str(err)
        return
    assert_balanced(ledger)
    check_targets(targets)


# ---------------------------------------------------------------- the whole stage

SMALL = dict(categories=("Books",), min_review_chars=20, item_min_users=2, user_min_reviews=5, user_max_reviews=50,
             held_out=3, profile_item_min_users=1, profile_min_reviews=2, max_reject_fraction=1.0,
             max_prompt_tokens=4096)
RATING_FIELD = re.compile(r"\[(?:Output )?Review Rating\]: (.*)")


def corpus() -> list[dict]:
    return [valid_review(10 * u + i, f"U{u}", f"I{i}") for u in range(3) for i in range(6)]


def write_raw(raw: Path, reviews: bytes, packed: bool) -> None:
    metas = [{"main_category": "Books", "title": f"Item I{i}", "rating_number": 10, "categories": ["Books"],
              "description": ["A description long enough to pass the DPL meta filter: one hundred characters "
                              "or more of it, here."], "parent_asin": f"I{i}"} for i in range(6)]
    (raw / "review_categories").mkdir(parents=True, exist_ok=True)
    (raw / "meta_categories").mkdir(parents=True, exist_ok=True)
    (raw / "review_categories" / ("Books.jsonl.gz" if packed else "Books.jsonl")).write_bytes(reviews)
    (raw / "meta_categories" / "meta_Books.jsonl").write_bytes(b"".join(hostile.dumps(m) + b"\n" for m in metas))


def check_prepared(root: Path) -> dict:
    stats = json.loads((Paths(root).reports / "data_stats.json").read_text())
    for name, counts in stats["files"].items():
        assert counts["read"] == counts["kept"] + counts["rejected"] + counts["dropped"], name
    assert stats["input_records"] == sum(c["read"] for c in stats["files"].values())
    for split in ("train", "val", "test"):
        for row in pq.read_table(Paths(root).prepared / f"{split}.parquet").to_pylist():
            for field in ("prompt_with", "prompt_without", "target"):
                check_clean_text(row[field], f"{row['example_id']} {field}")
            for value in RATING_FIELD.findall(row["prompt_with"] + row["prompt_without"]):
                assert math.isfinite(float(value)) and 1.0 <= float(value) <= 5.0, value
    return stats


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_prepare_on_hostile_amazon_files_finishes_and_adds_up(tmp_path_factory, tiny_tokenizer, data):
    root = tmp_path_factory.mktemp("hostile")
    tiny_tokenizer.save_pretrained(Paths(root).base_model)
    content, packed = data.draw(jsonl_file(corpus()))
    write_raw(root / "data" / "raw" / "test", content, packed)
    cfg = DataConfig(raw_dir="data/raw/test", **SMALL)
    prepare.run(Params(data=cfg), Paths(root))
    check_prepared(root)


def test_dirty_copy_of_the_embedded_benchmark_prepares_and_adds_up(tmp_path, tiny_tokenizer):
    """Every hostile class injected into the embedded benchmark (at a smaller size): prepare finishes."""
    from nextquill.config import SynthesizeConfig
    from nextquill.stages import synthesize

    small = SynthesizeConfig(users_per_category=20, items_per_category=20, max_reviews=20)
    synthesize.run(Params(synthesize=small), Paths(tmp_path))
    report = hostile.dirty_copy(Paths(tmp_path).synthetic_raw, tmp_path / "data" / "raw" / "dirty")
    tiny_tokenizer.save_pretrained(Paths(tmp_path).base_model)
    cfg = DataConfig(raw_dir="data/raw/dirty", max_reject_fraction=0.5)
    prepare.run(Params(data=cfg), Paths(tmp_path))
    stats = check_prepared(tmp_path)
    for name, injected in report.items():
        counts = stats["files"][f"data/raw/dirty/{name}"]
        expected: dict[str, int] = {}
        for reason in injected.values():
            if reason != "kept, cleaned":
                expected[reason] = expected.get(reason, 0) + 1
        if name.endswith(".gz"):  # records after the cut are gone, hostile ones with them: only check what is left
            assert counts["rejects"]["truncated_file"] == 1
            assert set(counts["rejects"]) <= set(expected)
        else:
            assert counts["rejects"] == expected, name
    assert stats["examples"]["test"] > 0


# ---------------------------------------------------------------- the serving edge

SERVING = {"rating_range": [1.0, 5.0], "max_new_tokens_limit": 64, "max_request_rows": 4, "max_request_chars": 5000}
ROW_VALUES = st.one_of(HOSTILE_VALUES, st.lists(st.one_of(HOSTILE_VALUES, st.dictionaries(
    st.sampled_from(["text", "title", "rating", "stars"]), HOSTILE_VALUES, max_size=3)), max_size=3))


@SETTINGS
@given(rows=st.lists(st.dictionaries(st.sampled_from(["prompt", "history", "item_title", "item_description", "rating",
                                                      "review_title", "nonsense"]), ROW_VALUES, max_size=5),
                     max_size=6),
       params=st.one_of(st.none(), st.fixed_dictionaries({"max_new_tokens": HOSTILE_VALUES})))
def test_a_request_is_answered_or_refused_with_a_named_field(rows, params):
    from nextquill.mlops.requests import Limits, RequestError, check_request, max_new_tokens

    limits = Limits.from_config(SERVING)
    try:
        n = max_new_tokens(params, 16, limits)
        checked = check_request(rows, limits)
    except RequestError as err:
        assert str(err)
        return
    assert 1 <= n <= 64 and 1 <= len(checked) <= 4
    for row in checked:
        fields = [row.prompt or "", row.item_title, row.item_description, *(v for _, v in row.question),
                  *(v for entry in row.history for _, v in entry)]
        for value in fields:
            check_clean_text(value, "request")
        for label, value in (*row.question, *(f for entry in row.history for f in entry)):
            if "Rating" in label:
                assert math.isfinite(float(value)) and 1.0 <= float(value) <= 5.0


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("Books.jsonl.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 64, "corrupt gzip data in compressed bytes 0-68: "),
    ("Books.jsonl", b"\xff\xfe{\x00}\x00", "byte 0: the file is UTF-16 (little-endian); convert it to UTF-8"),
])
def test_a_broken_file_ends_the_stage_with_one_line_naming_it(tmp_path, tiny_tokenizer, capsys, name, content,
                                                              problem):
    import yaml

    tiny_tokenizer.save_pretrained(Paths(tmp_path).base_model)
    raw = tmp_path / "data" / "raw" / "test"
    write_raw(raw, b"", packed=False)
    (raw / "review_categories" / "Books.jsonl").unlink()
    (raw / "review_categories" / name).write_bytes(content)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"raw_dir": "data/raw/test", "categories": ["Books"]}}))
    assert prepare.main(["--params", str(params), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert err[0].startswith(f"error: prepare: {raw / 'review_categories' / name}: {problem}")
